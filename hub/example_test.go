package hub_test

import (
	"fmt"

	"github.com/echelongraph/go-modelverify/hub"
)

func ExampleParseReference() {
	for _, s := range []string{"google-bert/bert-base-uncased", "hf://acme/llama-tiny@refs/pr/3", "hf://acme/llama-tiny:v1.0"} {
		ref, err := hub.ParseReference(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(ref.RepoID(), ref.Rev(), ref)
	}
	// Output:
	// google-bert/bert-base-uncased main hf://google-bert/bert-base-uncased
	// acme/llama-tiny refs/pr/3 hf://acme/llama-tiny@refs/pr/3
	// acme/llama-tiny v1.0 hf://acme/llama-tiny@v1.0
}
