package manifest

import (
	"context"
	"fmt"
	"os"

	"github.com/echelongraph/go-modelverify/internal/digest"
)

// HashFile hashes the file at localPath as the resource(s) it would be under name in a model
// serialized with ser: one resource in files mode, its shards in shards mode. It is how a file
// that is not (yet) in the model's directory, such as a download being staged, is checked
// against a signed manifest.
func HashFile(ctx context.Context, localPath, name string, ser Serialization) ([]Resource, error) {
	if err := ser.Validate(); err != nil {
		return nil, err
	}
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	fi, err := os.Stat(localPath)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s", ErrFileType, localPath)
	}
	tasks := []digest.Task{{Path: localPath, Length: fi.Size()}}
	names := []string{name}
	if ser.Method == MethodShards {
		tasks = digest.Shards(localPath, fi.Size(), ser.ShardSize)
		names = names[:0]
		for _, t := range tasks {
			names = append(names, fmt.Sprintf("%s:%d:%d", name, t.Offset, t.Offset+t.Length))
		}
	}
	h, err := digest.New(digest.Algorithm(ser.HashType))
	if err != nil {
		return nil, err
	}
	sums, err := h.Hash(ctx, tasks)
	if err != nil {
		return nil, err
	}
	alg := ser.ResourceAlgorithm()
	out := make([]Resource, len(tasks))
	for i := range tasks {
		out[i] = Resource{Name: names[i], Algorithm: alg, Digest: sums[i]}
	}
	return out, nil
}

// ResourcesFor returns the resources of m that belong to the file at path, in listed order.
func (m *Manifest) ResourcesFor(path string) []Resource {
	var out []Resource
	for _, r := range m.Resources {
		if r.Path() == path {
			out = append(out, r)
		}
	}
	return out
}
