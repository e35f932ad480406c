export { type ZlibCompressorOptions, zlibCompressor } from './zlib.js';
