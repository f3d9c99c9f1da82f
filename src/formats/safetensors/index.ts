// The safetensors reader.
export { decodeSafetensors, safetensorsFormat } from './safetensors-format.js';
