// Zarr v2 and v3 stores, read with zarrita through CAI's stores (folders, S3 prefixes by ranges).
export { useCaiCodecs } from './codecs.js';
export { zarrStore } from './store-adapter.js';
export { openZarr, type OpenZarrOptions, type ZarrDataset } from './zarr-dataset.js';
export { isZarrKey, namedArrayPaths, zarrRoot, zarrStores } from './zarr-source.js';
