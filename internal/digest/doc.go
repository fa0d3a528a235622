// Package digest hashes model files, whole or in byte-range shards, with a bounded pool of
// workers that reads large blocks with ReadAt, so that memory stays bounded whatever the size of
// the model and every core is kept busy when a model has many files.
package digest
