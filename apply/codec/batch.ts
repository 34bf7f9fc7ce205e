// Batches in and out, in one import: the streaming writer and reader.
export { batchChunks, batchOpenTag, encodeBatch, type BatchBody } from './batch-writer.js';
export { readBatch, decodeBatch, type BatchItem, type BatchLimits } from './batch-reader.js';
