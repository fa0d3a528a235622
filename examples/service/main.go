// Command service is the smallest Go service that puts the load gate in front of a model load:
// it verifies a model through a policy, and reads a file of it only through the verified Model.
//
//	service --policy policy.yaml hf://org/name@rev
//
// The Hub, the token and the cache come from HF_ENDPOINT, HF_TOKEN and HF_HUB_CACHE, as they do
// for huggingface_hub. It exits 0 with the model's path and evidence, or 1 with the refusal.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/echelongraph/go-modelverify/modelverify"
)

func main() {
	log.SetFlags(0)
	policyPath := flag.String("policy", "policy.yaml", "the load-gate policy")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: service [--policy FILE] hf://org/name[@rev]")
	}

	policy, err := modelverify.LoadPolicy(*policyPath)
	if err != nil {
		log.Fatal(err) // every problem in the policy, each with the field at fault
	}
	v, err := modelverify.NewVerifier(policy)
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	model, err := v.Verify(context.Background(), flag.Arg(0))
	var refusal *modelverify.Refusal
	switch {
	case errors.Is(err, modelverify.ErrDigestMismatch):
		log.Printf("tampered weights: %v", err)
		os.Exit(1)
	case errors.As(err, &refusal):
		log.Printf("refused %v: %v", refusal.ReasonNames(), err)
		os.Exit(1)
	case err != nil:
		log.Fatal(err)
	}

	ev := model.Evidence()
	fmt.Printf("load from %s\n", model.Dir())
	fmt.Printf("commit %s, %s by %s\n", ev.Commit, ev.Verification, ev.Signer.Identity)

	// Open checks that the file is still the one that was verified before handing it over.
	f, err := model.Open("config.json")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	config, err := io.ReadAll(f)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("config.json: %s\n", config)
}
