// Package modelverify is the load gate: it decides whether a model's weights may be loaded.
//
// A service asks a Verifier for a model by reference ("hf://org/name@rev") and gets back either
// a *Model, whose Dir is the only path it should load from, or a *Refusal that says exactly why
// the model was refused. Every decision is written to an audit log.
package modelverify
