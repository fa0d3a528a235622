package manifest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/echelongraph/go-modelverify/manifest"
)

// A test or a tool that makes a model in memory signs it without writing it out first; the
// bundle is the one SignDir makes for the same files in a directory.
func ExampleSignFiles() {
	signer, err := manifest.NewKeySigner(mustRead(interopKeys+"/signing-key.pem"), nil)
	if err != nil {
		log.Fatal(err)
	}
	files := map[string][]byte{
		"config.json":         []byte(`{"model_type":"demo"}`),
		"model.safetensors":   []byte("weights"),
		"tokenizer/vocab.txt": []byte("a\nb\n"),
	}
	bundle, m, err := manifest.SignFiles(context.Background(), files, manifest.Options{ModelName: "demo"}, signer)
	if err != nil {
		log.Fatal(err)
	}
	verifier, err := manifest.NewKeyVerifier(mustRead(interopKeys + "/signing-key-pub.pem"))
	if err != nil {
		log.Fatal(err)
	}
	res, err := manifest.Verify(context.Background(), bundle, verifier)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Manifest.ModelName, res.Manifest.Files(), res.Manifest.RootDigest() == m.RootDigest())
	// Output:
	// demo [config.json model.safetensors tokenizer/vocab.txt] true
}
