import { existsSync } from 'node:fs';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/**
 * Font files tried for PNG rendering, in order. Debian's `fonts-dejavu-core` provides the first; resvg has
 * no fonts of its own, so without one of these (or system fonts) a PNG has no text.
 * @example FONT_CANDIDATES.find((f) => existsSync(f))
 */
export const FONT_CANDIDATES: readonly string[] = Object.freeze([
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/TTF/DejaVuSans.ttf',
  '/Library/Fonts/Arial.ttf',
  'C:\\Windows\\Fonts\\arial.ttf',
]);

/**
 * The font file PNGs are drawn with, or undefined when none of `FONT_CANDIDATES` exists (system fonts are
 * then searched, which is slower and may find none).
 * @example pngFont() // '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf'
 */
export function pngFont(): string | undefined {
  return FONT_CANDIDATES.find((f) => existsSync(f));
}

function family(file: string): string {
  return /arial/i.test(file) ? 'Arial' : 'DejaVu Sans';
}

/**
 * Renders a vega-lite spec to SVG headlessly (vega's `none` renderer: no DOM, no canvas, no network; data
 * must be inline).
 * @example const svg = await renderSvg({ data: { values: [{ x: 1, y: 2 }] }, mark: 'point', encoding: {} });
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Draws an SVG to PNG with resvg at `scale` times its size, on white, with `pngFont()` for text.
 * @example writeFileSync('fig.png', svgToPng(await renderSvg(spec)));
 */
export function svgToPng(svg: string, scale = 2): Buffer {
  const font = pngFont();
  const resvg = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: scale },
    font: font
      ? {
          loadSystemFonts: false,
          fontFiles: [font],
          defaultFontFamily: family(font),
          sansSerifFamily: family(font),
        }
      : { loadSystemFonts: true },
  });
  return resvg.render().asPng();
}
