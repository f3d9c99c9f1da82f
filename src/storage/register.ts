// Registers the remote stores CAI ships with, so `openStore('s3://...')` works once this is imported.
import './s3.js';
