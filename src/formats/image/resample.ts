// Enlarging with PIL's bilinear filter. libvips enlarges with an interpolator that differs from PIL's
// by several levels on average (up to 60 on noisy pixels), while torchvision's Resize of PIL images is
// PIL's filter: small inputs (CIFAR-sized images, the Ray layout's raw pixels) enlarged to 224 must match it.

/** Per output position: the first input position and the normalized weights from there. */
function weights(inSize: number, outSize: number): { first: number; w: Float64Array }[] {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // the triangle filter's support is 1 input pixel, widened when shrinking
  const out: { first: number; w: Float64Array }[] = [];
  for (let x = 0; x < outSize; x++) {
    const center = (x + 0.5) * scale;
    const first = Math.max(Math.trunc(center - support + 0.5), 0);
    const last = Math.min(Math.trunc(center + support + 0.5), inSize);
    const w = new Float64Array(Math.max(0, last - first));
    let total = 0;
    for (let j = first; j < last; j++) {
      const v = Math.max(0, 1 - Math.abs((j - center + 0.5) / filterScale));
      w[j - first] = v;
      total += v;
    }
    if (total > 0) for (let k = 0; k < w.length; k++) w[k] /= total;
    out.push({ first, w });
  }
  return out;
}

const clamp8 = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/**
 * Resizes interleaved 8-bit pixels to `outWidth` x `outHeight` the way PIL's `Image.resize(size,
 * BILINEAR)` does: separable, horizontal pass first, each pass rounded to 8 bits.
 *
 * @example const big = resampleBilinear(pixels, 16, 20, 3, 224, 280);
 */
export function resampleBilinear(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  const hw = weights(width, outWidth);
  const tmp = new Uint8Array(height * outWidth * channels);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < outWidth; x++) {
      const { first, w } = hw[x];
      for (let c = 0; c < channels; c++) {
        let s = 0;
        for (let k = 0; k < w.length; k++) s += w[k] * src[(row + first + k) * channels + c];
        tmp[(y * outWidth + x) * channels + c] = clamp8(s);
      }
    }
  }
  const vw = weights(height, outHeight);
  const out = new Uint8Array(outHeight * outWidth * channels);
  const stride = outWidth * channels;
  for (let y = 0; y < outHeight; y++) {
    const { first, w } = vw[y];
    for (let i = 0; i < stride; i++) {
      let s = 0;
      for (let k = 0; k < w.length; k++) s += w[k] * tmp[(first + k) * stride + i];
      out[y * stride + i] = clamp8(s);
    }
  }
  return out;
}
