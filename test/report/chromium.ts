// The headless Chromium the report tests open pages in: Debian's chromium package, never a browser
// download (CI installs it: apt-get install chromium). Exports only.
import { existsSync } from 'node:fs';

/** The browser's path: `CAI_CHROMIUM`, else Debian's. */
export const CHROMIUM = process.env.CAI_CHROMIUM ?? '/usr/bin/chromium';

/** Headless, as root, and quiet on a closed network (no background connections refused at start). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A test's `skip` option: false with Chromium there, else the reason and what to do. */
export const chromiumSkip: string | false = existsSync(CHROMIUM)
  ? false
  : `no Chromium at ${CHROMIUM}: apt-get install chromium (or set CAI_CHROMIUM)`;
