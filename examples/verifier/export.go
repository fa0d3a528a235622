package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"

	"github.com/echelongraph/go-modelverify/modelverify"
)

// The shipped admission policies (examples/admission, and the ValidatingPolicies again as
// examples/kserve/manifests/kyverno-policy.yaml) are this command's output for
// examples/policy.yaml; TestExportedPoliciesAreUpToDate fails when they differ, and these lines
// regenerate them.
//go:generate go run . policy export all ../policy.yaml --out ../admission --image-registry ghcr.io/echelongraph/ --image-registry docker.io/kserve/ --image-registry kserve/ --image-registry gcr.io/knative-releases/ --namespace models
//go:generate go test -run ^TestExportedPoliciesAreUpToDate$ -update .

// exportFormats are the formats of `verifier policy export`, each with the file --out writes.
var exportFormats = []struct{ name, file, about string }{
	{"kyverno", "kyverno-validatingpolicy.yaml", "Kyverno ValidatingPolicy (policies.kyverno.io/v1, CEL), Kyverno 1.14 and later"},
	{"kyverno-clusterpolicy", "kyverno-clusterpolicy.yaml", "Kyverno ClusterPolicy (kyverno.io/v1, CEL rules), for clusters before the policies.kyverno.io kinds"},
	// gator verify reads the template and the constraint from a file each.
	{"gatekeeper", "gatekeeper-template.yaml gatekeeper-constraint.yaml", "OPA Gatekeeper ConstraintTemplate (Rego v1) and its Constraint"},
	{"terraform", "terraform/main.tf", "Terraform module applying the ValidatingPolicy with the kubernetes provider"},
	{"kyverno-image-signatures", "kyverno-image-signatures.yaml", "Kyverno ImageValidatingPolicy per OCI publisher (policies.kyverno.io/v1): modelcar images signed with cosign, both signature forms (tested with Kyverno 1.19)"},
}

func runPolicyExport(_ context.Context, e *env, args []string) error {
	const synopsis = "verifier policy export kyverno|kyverno-clusterpolicy|gatekeeper|terraform|kyverno-image-signatures|all P --image-registry PREFIX... [--namespace NS]... [--out DIR]\n" +
		"  the admission policies that admit exactly the model locations and images policy P allows"
	fs := newFlagSet(e, "policy export", synopsis)
	var registries, namespaces stringList
	fs.Var(&registries, "image-registry", "an approved image registry prefix, ending with '/' (repeatable)")
	fs.Var(&namespaces, "namespace", "a namespace whose pods are model-serving whatever their labels (repeatable)")
	out := fs.String("out", "", "write each format's file into this directory instead of stdout (all formats: required)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("policy export: want FORMAT and P, got %d arguments", len(pos))
	}
	format, policyPath := pos[0], pos[1]
	var formats []string
	for _, f := range exportFormats {
		if format == f.name || format == "all" {
			formats = append(formats, f.name)
		}
	}
	if len(formats) == 0 {
		return usagef("policy export: unknown format %q; want kyverno, kyverno-clusterpolicy, gatekeeper, terraform, kyverno-image-signatures or all", format)
	}
	if format == "all" && *out == "" {
		return usagef("policy export all: give --out DIR")
	}
	p, err := modelverify.LoadPolicy(policyPath)
	if err != nil {
		return err
	}
	rules, err := newAdmissionRules(p, registries, namespaces)
	if err != nil {
		return err
	}
	for _, f := range exportFormats {
		if format != f.name && format != "all" {
			continue
		}
		data, err := rules.export(f.name, filepath.Base(policyPath))
		if errors.Is(err, errNoOCIPublishers) && format == "all" {
			// Nothing to sign-check: no file, rather than one a kubectl apply refuses as empty.
			fmt.Fprintf(e.stderr, "skipped %s: %v\n", f.name, err)
			continue
		}
		if err != nil {
			return err
		}
		if *out == "" {
			_, err := e.stdout.Write(data)
			return err
		}
		files := strings.Fields(f.file)
		docs := [][]byte{data}
		if len(files) > 1 {
			docs = bytes.Split(data, []byte("\n---\n"))
		}
		if len(docs) != len(files) {
			return fmt.Errorf("export %s: %d documents for %d files", f.name, len(docs), len(files))
		}
		for i, file := range files {
			dst := filepath.Join(*out, file)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if !bytes.HasSuffix(docs[i], []byte("\n")) {
				docs[i] = append(docs[i], '\n')
			}
			if err := os.WriteFile(dst, docs[i], 0o644); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "wrote %s (%s)\n", dst, f.about)
		}
	}
	return nil
}

// export renders one format. source names the policy file in the header.
func (r *admissionRules) export(format, source string) ([]byte, error) {
	d := r.templateData(source)
	var name string
	switch format {
	case "kyverno":
		name = "validatingpolicy"
	case "kyverno-clusterpolicy":
		name = "clusterpolicy"
	case "gatekeeper":
		name = "gatekeeper"
	case "kyverno-image-signatures":
		return r.imageSignatures(source)
	case "terraform":
		vp, err := r.export("kyverno", source)
		if err != nil {
			return nil, err
		}
		return r.terraform(vp, source)
	default:
		return nil, fmt.Errorf("unknown format %q", format)
	}
	var b bytes.Buffer
	if err := exportTemplates.ExecuteTemplate(&b, name, d); err != nil {
		return nil, err
	}
	// Every document must parse: a template slip must fail here, not in a cluster.
	for i, doc := range bytes.Split(b.Bytes(), []byte("\n---\n")) {
		var v map[string]any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, fmt.Errorf("export %s: document %d does not parse: %v", format, i, err)
		}
	}
	return b.Bytes(), nil
}

// templateData is what the templates fill in: the rules as CEL, Rego and YAML text.
type templateData struct {
	Source, Publishers, Registries, Namespaces string
	ModelRegistries                            string
	Grammar, Image, ServingLabel, Runtime      string
	EnvNames                                   string
	// CEL
	PublishersCEL, ModelsCEL, ContainersCEL, EnvNamesCEL, NamespacesCEL string
	StorageCEL, OverridesCEL                                            string
	// Rego and Gatekeeper parameters
	ComponentsRego, FrameworksRego, EnvNamesRego   string
	PublishersJSON, RegistriesJSON, NamespacesJSON string
	NamespacesYAML                                 []string
}

func (r *admissionRules) templateData(source string) templateData {
	d := templateData{
		Source:          source,
		Publishers:      strings.Join(r.publisherNames(), ", "),
		Registries:      strings.Join(r.Registries, ", "),
		Namespaces:      strings.Join(r.Namespaces, ", "),
		ModelRegistries: strings.Join(r.ModelRegistries, ", "),
		Grammar:         modelURIGrammar,
		Image:           r.imageRegexp(),
		ServingLabel:    servingLabel,
		Runtime:         modelverifyRuntime,
		EnvNames:        strings.Join(modelEnvNames, " or "),
	}
	if d.ModelRegistries == "" {
		d.ModelRegistries = "none: the policy lists no registries"
	}
	// CEL: the publishers as a list of maps, each regular expression a raw string.
	var pubs []string
	for _, nr := range r.Patterns {
		pubs = append(pubs, fmt.Sprintf("{'publisher': '%s', 'namespace': '%s', 'admit': %s, 'shadow': %s, 'registry': %s}",
			nr.Publisher, nr.Namespace, celRaw(nr.Admit), celRaw(nr.Shadow), celRaw(nr.Registry)))
	}
	d.PublishersCEL = "[\n  " + strings.Join(pubs, ",\n  ") + "\n]"
	// CEL: every single-valued model location, then the storageUris lists.
	var singles, lists, ctrs, storage, overrides []string
	for _, c := range components {
		base := "object.spec.?" + c
		singles = append(singles, base+".?storageUri", base+".?model.?storageUri")
		storage = append(storage, "?"+base+".?model.?storage")
		overrides = append(overrides, "?"+base+".?storageContainerName")
		ctrs = append(ctrs, base+".?containers.orValue([])", base+".?initContainers.orValue([])",
			base+".?workerSpec.?containers.orValue([])", base+".?workerSpec.?initContainers.orValue([])")
		opt := []string{"?" + base + ".?model"}
		for _, f := range frameworks[c] {
			singles = append(singles, base+".?"+f+".?storageUri")
			storage = append(storage, "?"+base+".?"+f+".?storage")
			opt = append(opt, "?"+base+".?"+f)
		}
		lists = append(lists, base+".?storageUris.orValue([]).map(s, s.?uri.orValue(''))")
		ctrs = append(ctrs, "["+strings.Join(opt, ", ")+"]")
	}
	for i := range singles {
		singles[i] = "?" + singles[i]
	}
	d.ModelsCEL = "[\n  " + strings.Join(singles, ",\n  ") + "\n] +\n" + strings.Join(lists, " +\n")
	d.ContainersCEL = strings.Join(ctrs, " +\n")
	d.StorageCEL = "[\n  " + strings.Join(storage, ",\n  ") + "\n]"
	d.OverridesCEL = "[" + strings.Join(overrides, ", ") + "]"
	d.EnvNamesCEL = celStrings(modelEnvNames)
	d.NamespacesCEL = celStrings(r.Namespaces)
	// Rego: the same tables, as Rego literals (JSON is valid Rego).
	d.ComponentsRego = mustJSON(components)
	d.FrameworksRego = mustJSON(frameworks)
	d.EnvNamesRego = mustJSON(modelEnvNames)
	d.PublishersJSON = mustJSON(r.Patterns)
	d.RegistriesJSON = mustJSON(r.Registries)
	d.NamespacesJSON = mustJSON(r.Namespaces)
	d.NamespacesYAML = r.Namespaces
	return d
}

// celRaw quotes a regular expression as a CEL raw string; the expressions never hold a quote.
func celRaw(s string) string {
	if strings.Contains(s, "'") {
		panic("regular expression with a quote: " + s)
	}
	return "r'" + s + "'"
}

func celStrings(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = "'" + s + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// terraform wraps the ValidatingPolicy in a Terraform module. The control's IaC fix names a
// "kyverno_policy" resource, which no published provider has: the kubernetes provider's
// kubernetes_manifest is how a Kyverno policy is applied with Terraform, and it takes the same
// object. The policy is embedded as JSON in a heredoc, escaped so Terraform interpolates
// nothing in it.
func (r *admissionRules) terraform(validatingPolicy []byte, source string) ([]byte, error) {
	docs := bytes.Split(validatingPolicy, []byte("\n---\n"))
	var b strings.Builder
	fmt.Fprintf(&b, `# Generated by "verifier policy export terraform %s": do not edit; regenerate it.
#
# Applies the modelverify admission policies (Kyverno ValidatingPolicy, CEL) with the
# kubernetes provider. Approved publishers: %s. Approved image registries: %s.
# Kyverno (1.14 or later) must already run in the cluster; its CRDs define these kinds.

terraform {
  required_version = ">= 1.3"
  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.23"
    }
  }
}
`, source, strings.Join(r.publisherNames(), ", "), strings.Join(r.Registries, ", "))
	for _, doc := range docs {
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return nil, err
		}
		meta, _ := obj["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		j, err := json.MarshalIndent(obj, "    ", "  ")
		if err != nil {
			return nil, err
		}
		body := strings.NewReplacer("${", "$${", "%{", "%%{").Replace(string(j))
		fmt.Fprintf(&b, "\nresource \"kubernetes_manifest\" %q {\n  manifest = jsondecode(<<-EOT\n    %s\n  EOT\n  )\n}\n",
			strings.ReplaceAll(name, "-", "_"), body)
	}
	return []byte(b.String()), nil
}

// The templates. CEL expressions are YAML block scalars, so no YAML escaping applies to them;
// the regular expressions in them are CEL raw strings.
var exportTemplates = template.New("")

func init() {
	template.Must(exportTemplates.Funcs(template.FuncMap{
		"indent": func(n int, s string) string {
			pad := strings.Repeat(" ", n)
			return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
		},
		// include renders a named template into a string, for indenting it.
		"include": func(name string, d templateData) (string, error) {
			var b bytes.Buffer
			err := exportTemplates.ExecuteTemplate(&b, name, d)
			return b.String(), err
		},
		"admit": func(u string) string {
			return u + ".matches(variables.grammar) && variables.publishers.exists(p, " + u + ".matches(p.admit) && (p.registry == '' || " + u + ".matches(p.registry)) && (p.shadow == '' || !" + u + ".matches(p.shadow)))"
		},
	}).Parse(`
{{- define "header" -}}
# Generated by "verifier policy export {{.}}": do not edit; regenerate it
# (go generate ./examples/verifier, or the command with the same flags).
{{- end -}}

{{- define "about" -}}
# ISO/IEC 42001 control 8.4, the admission side: models come only from approved publishers'
# Hub repositories or OCI repositories on approved registries, and model-serving containers
# only from approved image registries. The load gate
# (the modelverify storage initializer or runtime) then proves what the location points at;
# this keeps anyone from pointing it elsewhere, or at a store the gate cannot verify.
#   approved publishers:      {{.Publishers}} (from {{.Source}})
#   approved model registries: {{.ModelRegistries}} (oci://)
#   approved image registries: {{.Registries}}
#   model-serving pods:       in namespaces {{.Namespaces}}, or labelled {{.ServingLabel}}
{{- end -}}

{{- define "modelVariables" -}}
# The admitted model locations: the grammar, then one entry per publisher namespace or oci
# entry (most specific first). An entry admits a URI it matches (for oci://, on a repository its
# registry lists too) unless an entry of another publisher at least as specific also claims the
# repository (then that publisher's rules decide).
- name: grammar
  expression: r'{{.Grammar}}'
- name: publishers
  expression: |-
{{indent 4 .PublishersCEL}}
# Every model location of the InferenceService: each component's storageUri, model.storageUri,
# framework storageUri and storageUris[].uri.
- name: models
  expression: |-
{{indent 4 .ModelsCEL}}
- name: refusedModels
  expression: variables.models.filter(u, !({{admit "u"}}))
# Every container-like spec of the components, whose {{.EnvNames}} variables name a model.
- name: containers
  expression: |-
{{indent 4 .ContainersCEL}}
# A StorageSpec (model.storage) names the model by a key of KServe's storage-config secret,
# which admission cannot read; storageContainerName picks a storage initializer by name, which
# could be KServe's own, unverified one for hf:// too.
- name: storageSpecs
  expression: |-
{{indent 4 .StorageCEL}}
- name: storageContainerNames
  expression: >-
    {{.OverridesCEL}}
- name: refusedEnv
  expression: >-
    variables.containers.filter(c, c.?env.orValue([]).exists(e, e.name in {{.EnvNamesCEL}} &&
    !({{admit "e.?value.orValue('')"}})))
{{- end -}}

{{- define "modelValidations" -}}
- expression: size(variables.refusedModels) == 0
  messageExpression: >-
    'model locations not admitted: ' + variables.refusedModels.join(', ') +
    '. A model location must be hf://<org>/<name>[@<revision>] of an approved publisher
    ({{.Publishers}}), with the commit pinned where the publisher requires it, or
    oci://<host>/<repository>[:<tag>][@sha256:<digest>] on an approved registry
    ({{.ModelRegistries}}) in a repository the registry lists and an approved publisher claims,
    pinned by digest where the publisher requires it; s3://, gs://, pvc://, http(s):// and
    oci+fetch:// (or any other oci+ scheme) locations cannot be verified by the load gate.'
- expression: size(variables.refusedEnv) == 0
  messageExpression: >-
    'containers ' + variables.refusedEnv.map(c, c.?name.orValue('(model)')).join(', ') +
    ' name a model in {{.EnvNames}} that is not hf://<org>/<name>[@<revision>] or
    oci://<host>/<repository>[:<tag>][@sha256:<digest>] of an approved publisher
    ({{.Publishers}}), or take it from elsewhere (valueFrom).'
- expression: size(variables.storageSpecs) == 0
  message: >-
    A model named by a storage spec (model.storage or a framework's storage: a key of the
    storage-config secret) cannot be checked at admission; give it as an hf:// or oci://
    storageUri.
- expression: size(variables.storageContainerNames) == 0
  message: >-
    storageContainerName selects a storage initializer by name, bypassing the one that claims
    hf:// (and oci://) and verifies it; remove it.
- expression: >-
    !(object.spec.?predictor.?model.?runtime.orValue('') == '{{.Runtime}}' &&
    (size(object.spec.?predictor.?model.?args.orValue([])) > 0 ||
    size(object.spec.?predictor.?model.?command.orValue([])) > 0))
  message: >-
    The {{.Runtime}} runtime takes its model from MODELVERIFY_MODEL; no argument or command
    may name another model.
{{- end -}}

{{- define "imageVariables" -}}
- name: image
  expression: r'{{.Image}}'
- name: images
  expression: >-
    object.spec.?containers.orValue([]).map(c, c.?image.orValue('')) +
    object.spec.?initContainers.orValue([]).map(c, c.?image.orValue('')) +
    object.spec.?ephemeralContainers.orValue([]).map(c, c.?image.orValue(''))
- name: refusedImages
  expression: variables.images.filter(i, !i.matches(variables.image))
{{- end -}}

{{- define "imageValidations" -}}
- expression: size(variables.refusedImages) == 0
  messageExpression: >-
    'images not from an approved registry ({{.Registries}}): ' +
    variables.refusedImages.join(', ') + '. Containers, init containers (the storage
    initializer), ephemeral containers and the modelcar sidecar of a model-serving pod must
    all come from an approved registry.'
{{- end -}}

{{- define "validatingpolicy" -}}
{{template "header" "kyverno"}}
{{template "about" .}}
apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: modelverify-approved-model-sources
  annotations:
    policies.kyverno.io/title: Approved model sources
    policies.kyverno.io/category: Supply chain
    policies.kyverno.io/severity: high
    policies.kyverno.io/description: >-
      Every model location of an InferenceService is an hf:// repository or an oci://
      repository on an approved registry ({{.ModelRegistries}}) of an approved publisher
      ({{.Publishers}}), well formed and pinned where the publisher requires it.
spec:
  validationActions: [Deny]
  # A CEL error (a storageUri that is not a string, say) refuses rather than admits.
  failurePolicy: Fail
  evaluation:
    background:
      enabled: true
  matchConstraints:
    resourceRules:
      - apiGroups: [serving.kserve.io]
        apiVersions: ["*"]
        operations: [CREATE, UPDATE]
        resources: [inferenceservices]
  variables:
{{indent 4 (include "modelVariables" .)}}
  validations:
{{indent 4 (include "modelValidations" .)}}
---
{{template "about" .}}
apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: modelverify-approved-images
  annotations:
    policies.kyverno.io/title: Approved model-serving images
    policies.kyverno.io/category: Supply chain
    policies.kyverno.io/severity: high
    policies.kyverno.io/description: >-
      Every container of a model-serving pod, including init and ephemeral containers and the
      modelcar sidecar, comes from an approved registry ({{.Registries}}).
spec:
  validationActions: [Deny]
  # A CEL error (a storageUri that is not a string, say) refuses rather than admits.
  failurePolicy: Fail
  evaluation:
    background:
      enabled: true
  matchConstraints:
    resourceRules:
      # pods/ephemeralcontainers: kubectl debug adds containers through this subresource,
      # which a rule on pods alone never sees.
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE, UPDATE]
        resources: [pods, pods/ephemeralcontainers]
  matchConditions:
    - name: model-serving-pod
      expression: >-
        object.metadata.?namespace.orValue(request.namespace) in {{.NamespacesCEL}} ||
        '{{.ServingLabel}}' in object.metadata.?labels.orValue({})
  variables:
{{indent 4 (include "imageVariables" .)}}
  validations:
{{indent 4 (include "imageValidations" .)}}
{{end -}}

{{- define "clusterpolicy" -}}
{{template "header" "kyverno-clusterpolicy"}}
{{template "about" .}}
# The kyverno.io/v1 ClusterPolicy form of the ValidatingPolicies, with the same CEL, for
# clusters whose Kyverno predates the policies.kyverno.io kinds (1.11 to 1.13). Apply one form,
# not both.
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: modelverify-approved-model-sources
  annotations:
    policies.kyverno.io/title: Approved model sources
    policies.kyverno.io/category: Supply chain
    policies.kyverno.io/severity: high
    policies.kyverno.io/description: >-
      Models only from approved publishers ({{.Publishers}}) and model registries
      ({{.ModelRegistries}}), model-serving containers only from approved image registries
      ({{.Registries}}).
spec:
  background: true
  # When Kyverno cannot answer, or a CEL expression fails, the request is refused.
  webhookConfiguration:
    failurePolicy: Fail
  rules:
    - name: model-locations-from-approved-publishers
      match:
        any:
          - resources:
              kinds: [serving.kserve.io/*/InferenceService]
              operations: [CREATE, UPDATE]
      validate:
        failureAction: Enforce
        cel:
          variables:
{{indent 12 (include "modelVariables" .)}}
          expressions:
{{indent 12 (include "modelValidations" .)}}
    - name: images-from-approved-registries
      match:
        any:
          - resources:
              kinds: [Pod, Pod/ephemeralcontainers]
              operations: [CREATE, UPDATE]
              namespaces: {{.NamespacesJSON}}
          - resources:
              kinds: [Pod, Pod/ephemeralcontainers]
              operations: [CREATE, UPDATE]
              selector:
                matchExpressions:
                  - key: {{.ServingLabel}}
                    operator: Exists
      validate:
        failureAction: Enforce
        cel:
          variables:
{{indent 12 (include "imageVariables" .)}}
          expressions:
{{indent 12 (include "imageValidations" .)}}
{{end -}}

{{- define "gatekeeper" -}}
{{template "header" "gatekeeper"}}
{{template "about" .}}
# The same rules for OPA Gatekeeper: the template holds the logic (Rego v1), the constraint
# the lists, which the generator takes from the policy. Gatekeeper's webhook fails open by
# default (failurePolicy: Ignore); install it with validatingWebhookFailurePolicy=Fail, or an
# unavailable Gatekeeper admits everything. kubectl debug's ephemeral containers reach it only
# if its webhook also matches the pods/ephemeralcontainers subresource.
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: modelverifyapprovedsources
  annotations:
    description: >-
      Model locations of InferenceServices only from approved publishers (hf://) and
      approved registries and publishers (oci://), images of
      model-serving pods only from approved registries.
spec:
  crd:
    spec:
      names:
        kind: ModelverifyApprovedSources
      validation:
        openAPIV3Schema:
          type: object
          properties:
            grammar:
              type: string
              description: The grammar every model location must match (RE2).
            publishers:
              type: array
              items:
                type: object
                properties:
                  publisher: {type: string}
                  namespace: {type: string}
                  requirePinnedRevision: {type: boolean}
                  admit: {type: string}
                  shadow: {type: string}
                  registry: {type: string}
                  requireDigest: {type: boolean}
            image:
              type: string
              description: The expression an approved image matches (RE2).
            namespaces:
              type: array
              items: {type: string}
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
        - engine: Rego
          source:
            version: "v1"
            rego: |
              package modelverifyapprovedsources

              components := {{.ComponentsRego}}

              frameworks := {{.FrameworksRego}}

              model_env := {{.EnvNamesRego}}

              obj := input.review.object

              is_isvc if input.review.kind.kind == "InferenceService"

              is_pod if input.review.kind.kind == "Pod"

              admitted(uri) if {
              	is_string(uri)
              	regex.match(input.parameters.grammar, uri)
              	some p in input.parameters.publishers
              	regex.match(p.admit, uri)
              	on_listed_repository(p, uri)
              	not shadowed(p, uri)
              }

              # An oci:// entry also needs its registry to list the repository.
              on_listed_repository(p, uri) if p.registry == ""

              on_listed_repository(p, uri) if {
              	p.registry != ""
              	regex.match(p.registry, uri)
              }

              shadowed(p, uri) if {
              	p.shadow != ""
              	regex.match(p.shadow, uri)
              }

              # Every model location of an InferenceService, with its field path.
              location contains [sprintf("spec.%s.storageUri", [c]), u] if {
              	is_isvc
              	some c in components
              	u := obj.spec[c].storageUri
              }

              location contains [sprintf("spec.%s.model.storageUri", [c]), u] if {
              	is_isvc
              	some c in components
              	u := obj.spec[c].model.storageUri
              }

              location contains [sprintf("spec.%s.%s.storageUri", [c, f]), u] if {
              	is_isvc
              	some c, fs in frameworks
              	some f in fs
              	u := obj.spec[c][f].storageUri
              }

              location contains [sprintf("spec.%s.storageUris[%d].uri", [c, i]), u] if {
              	is_isvc
              	some c in components
              	some i, s in obj.spec[c].storageUris
              	u := object.get(s, "uri", "")
              }

              # Container-like specs: containers, init containers, the model, the frameworks.
              container contains [sprintf("spec.%s.%s[%d]", [c, k, i]), ctr] if {
              	is_isvc
              	some c in components
              	some k in ["containers", "initContainers"]
              	some i, ctr in obj.spec[c][k]
              }

              container contains [sprintf("spec.%s.workerSpec.%s[%d]", [c, k, i]), ctr] if {
              	is_isvc
              	some c in components
              	some k in ["containers", "initContainers"]
              	some i, ctr in obj.spec[c].workerSpec[k]
              }

              container contains [sprintf("spec.%s.model", [c]), obj.spec[c].model] if {
              	is_isvc
              	some c in components
              }

              container contains [sprintf("spec.%s.%s", [c, f]), obj.spec[c][f]] if {
              	is_isvc
              	some c, fs in frameworks
              	some f in fs
              }

              location contains [sprintf("%s.env[%d](%s)", [p, i, e.name]), u] if {
              	some [p, ctr] in container
              	some i, e in ctr.env
              	e.name in model_env
              	u := object.get(e, "value", "")
              }

              violation contains {"msg": msg} if {
              	some [path, u] in location
              	not admitted(u)
              	msg := sprintf("%s: model location %q is not admitted: it must be hf://<org>/<name>[@<revision>] of an approved publisher ({{.Publishers}}), or oci://<host>/<repository>[:<tag>][@sha256:<digest>] on an approved registry ({{.ModelRegistries}}) in a repository the registry lists and an approved publisher claims, pinned where the publisher requires it", [path, u])
              }

              # A storage spec names the model by a key of the storage-config secret, which
              # admission cannot read; storageContainerName could pick an unverified initializer.
              violation contains {"msg": msg} if {
              	is_isvc
              	some c in components
              	some f in array.concat(["model"], object.get(frameworks, c, []))
              	obj.spec[c][f].storage
              	msg := sprintf("spec.%s.%s.storage: a model named by a storage spec cannot be checked at admission; give it as an hf:// or oci:// storageUri", [c, f])
              }

              violation contains {"msg": msg} if {
              	is_isvc
              	some c in components
              	obj.spec[c].storageContainerName
              	msg := sprintf("spec.%s.storageContainerName: selecting a storage initializer by name bypasses the one that verifies hf:// and oci://; remove it", [c])
              }

              violation contains {"msg": msg} if {
              	is_isvc
              	m := obj.spec.predictor.model
              	m.runtime == "{{.Runtime}}"
              	count(object.get(m, "args", [])) + count(object.get(m, "command", [])) > 0
              	msg := "spec.predictor.model: the {{.Runtime}} runtime takes its model from MODELVERIFY_MODEL; no argument or command may name another model"
              }

              model_serving_pod if {
              	is_pod
              	object.get(obj.metadata, "namespace", input.review.namespace) in input.parameters.namespaces
              }

              model_serving_pod if {
              	is_pod
              	obj.metadata.labels["{{.ServingLabel}}"]
              }

              violation contains {"msg": msg} if {
              	model_serving_pod
              	some k in ["containers", "initContainers", "ephemeralContainers"]
              	some i, ctr in obj.spec[k]
              	img := object.get(ctr, "image", "")
              	not regex.match(input.parameters.image, img)
              	msg := sprintf("spec.%s[%d].image: %q is not from an approved registry ({{.Registries}})", [k, i, img])
              }
---
{{template "header" "gatekeeper"}}
# The constraint: which objects the template checks, and the lists it checks them against.
# Apply the template first.
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: ModelverifyApprovedSources
metadata:
  name: modelverify-approved-sources
spec:
  enforcementAction: deny
  match:
    kinds:
      - apiGroups: [serving.kserve.io]
        kinds: [InferenceService]
      - apiGroups: [""]
        kinds: [Pod]
  parameters:
    grammar: {{printf "%q" .Grammar}}
    publishers: {{.PublishersJSON}}
    image: {{printf "%q" .Image}}
    namespaces: {{.NamespacesJSON}}
{{end -}}
`))
}

// errNoOCIPublishers: the policy has no oci entries, so there is no image signature to check.
var errNoOCIPublishers = errors.New("no publisher of the policy claims OCI repositories (oci)")

// imageSignatures renders kyverno-image-signatures: for clusters that keep KServe's modelcar
// sidecar (the oci:// image runs as a container, and no storage initializer, so no load gate,
// ever sees it), one Kyverno ImageValidatingPolicy per OCI publisher that refuses a pod whose
// image is in a repository the publisher claims unless cosign signed its digest with one of the
// publisher's identities.
//
// ImageValidatingPolicy, not a ClusterPolicy verifyImages rule: Kyverno 1.19's ClusterPolicy
// verifies one signature form per entry (type: Cosign finds only the legacy .sig tag, type:
// SigstoreBundle only bundle referrers), and the entries of a rule must all pass, so one rule
// cannot accept an image signed in either form; the ImageValidatingPolicy's cosign attestor
// looks for a bundle referrer and falls back to the .sig tag, as cosign 3 does.
func (r *admissionRules) imageSignatures(source string) ([]byte, error) {
	p := r.policy
	var b bytes.Buffer
	fmt.Fprintf(&b, `# Generated by "verifier policy export kyverno-image-signatures": do not edit; regenerate it
# (go generate ./examples/verifier, or the command with the same flags).
# ISO/IEC 42001 control 8.4, for clusters that keep KServe's modelcar sidecar: an oci:// model
# then runs as an image, and no storage initializer (so no load gate) ever reads it. These
# policies refuse a pod any of whose containers, init or ephemeral containers runs an image
# from a repository an OCI publisher of %s claims, unless cosign signed that image's digest
# with one of the publisher's identities, in either form: a Sigstore bundle referrer (cosign 3)
# or a legacy sha256-<hex>.sig tag (cosign 2). Kyverno looks for bundles first and, when the
# image has none, for the .sig tag. Tags are resolved to digests (mutateDigest) and a pod must
# end up naming its images by digest (verifyDigest). For Kyverno with the policies.kyverno.io/v1
# kinds (tested with Kyverno 1.19).
`, source)
	var docs [][]byte
	claims := 0
	for _, pub := range p.Publishers {
		if len(pub.OCI) == 0 {
			continue
		}
		claims++
		if !pub.SignatureRequired() {
			// The gate verifies such a model against its digests only; a pod names its image
			// by digest (the images policy's concern), so there is nothing more to check here.
			fmt.Fprintf(&b, "# Publisher %s (%s) has requireSignature: false: its images are not checked here,\n"+
				"# as the load gate checks them against their digests only.\n", pub.Name, strings.Join(pub.OCI, ", "))
			continue
		}
		doc, notes, err := r.imageSignaturePolicy(&pub)
		if err != nil {
			return nil, fmt.Errorf("kyverno-image-signatures: publisher %s: %w", pub.Name, err)
		}
		var head string
		for _, note := range notes {
			head += "# " + strings.ReplaceAll(note, "\n", "\n# ") + "\n"
		}
		docs = append(docs, append([]byte(head), doc...))
	}
	if claims == 0 {
		return nil, errNoOCIPublishers
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("kyverno-image-signatures: no OCI publisher of the policy requires a signature: nothing to check at admission")
	}
	b.Write(bytes.Join(docs, []byte("---\n")))
	return b.Bytes(), nil
}

// imageSignaturePolicy is one publisher's ImageValidatingPolicy, and notes on what it leaves out.
func (r *admissionRules) imageSignaturePolicy(pub *modelverify.Publisher) ([]byte, []string, error) {
	type obj = map[string]any
	// The images this publisher's policy checks: each oci entry's repositories, less those
	// another publisher claims more specifically (its own policy checks them). A tie, which the
	// gate refuses, is checked by both, so such an image passes only signed by both.
	var matches, claimed []string
	var globs []string
	for _, nr := range r.Patterns {
		if nr.Publisher != pub.Name || nr.repoRE == "" {
			continue
		}
		globs = append(globs, strings.TrimPrefix(nr.Namespace, "oci://"))
		host := regexp.QuoteMeta(nr.host)
		re := `^` + host + `/` + nr.repoRE + ociTagRE + `(?:` + ociDigestRE + `)?$`
		var shadows []string
		for _, o := range r.Patterns {
			if o.Publisher != pub.Name && o.repoRE != "" && o.host == nr.host && o.rank > nr.rank && globsMayOverlap(o.glob, nr.glob) {
				shadows = append(shadows, o.repoRE)
			}
		}
		expr := func(v string) string { return v + ".matches(" + celRaw(re) + ")" }
		if len(shadows) > 0 {
			shadow := `^` + host + `/(?:` + strings.Join(shadows, "|") + `)(?:[:@].*)?$`
			base := expr
			expr = func(v string) string { return base(v) + " && !" + v + ".matches(" + celRaw(shadow) + ")" }
		}
		matches = append(matches, expr("ref"))
		claimed = append(claimed, "("+expr("i")+")")
	}
	var attestors []obj
	var names, who, dropped []string
	for i, id := range pub.Identities {
		switch {
		case id.PublicKey != nil:
			key, err := id.PublicKey.Bytes()
			if err != nil {
				return nil, nil, fmt.Errorf("identities[%d].publicKey: %w", i, err)
			}
			fp, err := spkiFingerprint(key)
			if err != nil {
				return nil, nil, fmt.Errorf("identities[%d].publicKey %s: %w", i, id.PublicKey, err)
			}
			name := fmt.Sprintf("key%d", i)
			// A publicKey identity is cosign sign --key, which the gate verifies without a
			// transparency log entry (POLICY.md): the same here, which is also what lets
			// Kyverno verify offline.
			attestors = append(attestors, obj{"name": name, "cosign": obj{
				"key":   obj{"data": strings.TrimSpace(string(key)) + "\n"},
				"ctlog": obj{"insecureIgnoreTlog": true, "insecureIgnoreSCT": true},
			}})
			names, who = append(names, name), append(who, "key "+fp)
		case id.Sigstore != nil:
			s := id.Sigstore
			if s.Extensions != nil && !reflect.ValueOf(*s.Extensions).IsZero() {
				// Kyverno 1.19's ImageValidatingPolicy reads keyless.additionalExtensions
				// nowhere, and a ClusterPolicy knows only the deprecated GitHub workflow OIDs:
				// exported without them, the identity would admit a certificate the gate
				// refuses. Left out, its signatures are refused at admission: stricter, never
				// weaker.
				dropped = append(dropped, fmt.Sprintf("identities[%d] (sigstore %s from %s) has extensions, which Kyverno cannot check "+
					"on an image signature (its ImageValidatingPolicy ignores keyless.additionalExtensions),\nso images it signed are "+
					"refused here; to accept them, route oci:// through the modelverify storage initializer\ninstead of modelcars, where the gate checks the extensions",
					i, firstNonEmpty(s.Identity, s.IdentityRegexp), firstNonEmpty(s.Issuer, s.IssuerRegexp)))
				continue
			}
			idt := obj{}
			switch {
			case s.Identity != "":
				idt["subject"] = s.Identity
			case s.IdentityRegexp != "":
				idt["subjectRegExp"] = wholeRegexp(s.IdentityRegexp)
			}
			switch {
			case s.Issuer != "":
				idt["issuer"] = s.Issuer
			case s.IssuerRegexp != "":
				idt["issuerRegExp"] = wholeRegexp(s.IssuerRegexp)
			}
			cosign := obj{"keyless": obj{"identities": []obj{idt}}}
			if pub.TrustRoot != "" {
				tr, err := trustedRootJSON(pub.TrustRoot)
				if err != nil {
					return nil, nil, fmt.Errorf("trustRoot %s: %w", pub.TrustRoot, err)
				}
				cosign["trustedRoot"] = obj{"value": tr}
			}
			name := fmt.Sprintf("keyless%d", i)
			attestors = append(attestors, obj{"name": name, "cosign": cosign})
			names = append(names, name)
			who = append(who, "sigstore "+firstNonEmpty(s.Identity, s.IdentityRegexp)+" from "+firstNonEmpty(s.Issuer, s.IssuerRegexp))
		case id.Certificate != nil:
			// cosign sign --certificate: a leaf of the publisher's own CA, judged by the gate
			// against its roots, code-signing usage and subject constraints, without a log.
			// Kyverno's attestors take a given leaf (cosign.certificate) or Fulcio-style keyless
			// identities with an OIDC issuer, which a private CA's leaf does not carry; neither
			// says "any leaf of this CA with this SAN and usage". Left out, its signatures are
			// refused at admission: stricter, never weaker.
			dropped = append(dropped, fmt.Sprintf("identities[%d] (certificate) is a leaf of a private CA, which Kyverno's attestors "+
				"cannot judge as the gate does (roots, code-signing usage, subject),\nso images it signed are refused here; "+
				"to accept them, route oci:// through the modelverify storage initializer\ninstead of modelcars", i))
			continue
		default:
			return nil, nil, fmt.Errorf("identities[%d]: an identity of no known kind", i)
		}
	}
	if len(attestors) == 0 {
		why := "it has no identities"
		if len(dropped) > 0 {
			flat := make([]string, len(dropped))
			for i, d := range dropped {
				flat[i] = strings.ReplaceAll(d, "\n", " ") // line breaks are for the YAML comment
			}
			why = strings.Join(flat, "; ")
		}
		return nil, nil, fmt.Errorf("none of its identities can be checked by Kyverno, so its images could never run: %s; "+
			"give it a publicKey identity, or a sigstore one without extensions", why)
	}
	var notes []string
	for _, d := range dropped {
		notes = append(notes, "Publisher "+pub.Name+": "+d+".")
	}
	for i := range names {
		names[i] = "attestors." + names[i]
	}
	all := "images.?containers.orValue([]) + images.?initContainers.orValue([]) + images.?ephemeralContainers.orValue([])"
	var matchRefs []obj
	for _, m := range matches {
		matchRefs = append(matchRefs, obj{"expression": m})
	}
	policy := obj{
		"apiVersion": "policies.kyverno.io/v1",
		"kind":       "ImageValidatingPolicy",
		"metadata": obj{
			"name": "modelverify-image-signatures-" + pub.Name,
			"annotations": obj{
				"policies.kyverno.io/title":       "Signed model images of " + pub.Name,
				"policies.kyverno.io/category":    "Supply chain",
				"policies.kyverno.io/severity":    "high",
				"policies.kyverno.io/description": "Images in repositories publisher " + pub.Name + " claims (" + strings.Join(globs, ", ") + ") run only signed with cosign by one of its identities: " + strings.Join(who, "; ") + ".",
			},
		},
		"spec": obj{
			"validationActions": []string{"Deny"},
			// A registry that cannot be reached, or a CEL error, refuses rather than admits.
			"failurePolicy": "Fail",
			"matchConstraints": obj{"resourceRules": []obj{{
				"apiGroups": []string{""}, "apiVersions": []string{"v1"}, "operations": []string{"CREATE", "UPDATE"},
				"resources": []string{"pods", "pods/ephemeralcontainers"},
			}}},
			"matchImageReferences":     matchRefs,
			"validationConfigurations": obj{"mutateDigest": true, "verifyDigest": true, "required": true},
			"attestors":                attestors,
			"validations": []obj{{
				"expression": "(" + all + ").filter(i, " + strings.Join(claimed, " || ") + ").all(i, verifyImageSignatures(i, [" + strings.Join(names, ", ") + "]) > 0)",
				"message": "an image in a repository publisher " + pub.Name + " claims (" + strings.Join(globs, ", ") +
					") is not signed with cosign by one of its identities (" + strings.Join(who, "; ") +
					"), in either signature form; sign the image's digest (cosign sign), or use a signed image",
			}},
		},
	}
	doc, err := yaml.Marshal(policy)
	return doc, notes, err
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// wholeRegexp anchors a policy regular expression, which always matches the whole value, for
// engines that match anywhere (cosign's subject and issuer expressions).
func wholeRegexp(re string) string { return `^(?:` + re + `)$` }

// spkiFingerprint is "sha256:<hex>" of a PEM public key's SubjectPublicKeyInfo, as the audit
// log names key signers.
func spkiFingerprint(pemKey []byte) (string, error) {
	block, _ := pem.Decode(pemKey)
	if block == nil {
		return "", errors.New("no PEM block")
	}
	if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
		return "", err
	}
	sum := sha256.Sum256(block.Bytes)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// trustedRootJSON is the Sigstore trusted root of a publisher's trustRoot file, which holds
// either a trusted_root.json or a ClientTrustConfig that embeds one, as JSON for the
// attestor's trustedRoot.value.
func trustedRootJSON(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	var doc struct {
		MediaType   string          `json:"mediaType"`
		TrustedRoot json.RawMessage `json:"trustedRoot"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return "", err
	}
	switch {
	case strings.Contains(doc.MediaType, "trustedroot"):
		return string(data), nil
	case len(doc.TrustedRoot) > 0:
		return string(doc.TrustedRoot), nil
	}
	return "", fmt.Errorf("neither a trusted_root.json nor a ClientTrustConfig (mediaType %q)", doc.MediaType)
}
