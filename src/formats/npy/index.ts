// NumPy readers: .npy and .npz.
export { decodeNpy, decodeNpyTensor, npyFormat } from './npy-format.js';
export { decodeNpz, npzFormat } from './npz-format.js';
export { parseNpyHeader, type NpyHeader } from './npy-header.js';
