// FITS images and cubes: a hand-written reader (no maintained JS FITS library reads from ranges).
export { BLOCK, parseHeader, type CardValue, type FitsHeader } from './header.js';
export { BITPIX, findImageHdu, type HduSelector, type ImageHdu, type RangeReader } from './hdu.js';
export { decodeFitsValues, fitsDType, type FitsValues } from './data.js';
export { bandPattern, groupBands, itemsFromKeys, DEFAULT_BAND_PATTERN, type BandPattern } from './bands.js';
export { fitsBytes, readBandGroup, readFitsItem, type FitsJobFields } from './items.js';
export { cutoutLayout, openCutouts, type CutoutLayout } from './cutouts.js';
export { FITS_SUFFIXES, fitsFiles, isFitsKey } from './fits-source.js';
