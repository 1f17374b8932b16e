// Package kubernetes holds aimind's Kubernetes manifests; its test builds the
// kustomization with the kustomize Go API and decodes every object strictly
// into the k8s.io/api types, so a misspelt or misplaced field fails here and
// not at `kubectl apply`.
package kubernetes_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

func scheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme, autoscalingv2.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// decodeStrict decodes one object; unknown or duplicate fields are errors.
func decodeStrict(s *runtime.Scheme, data []byte) (runtime.Object, error) {
	ser := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, s, s, kjson.SerializerOptions{Yaml: true, Strict: true})
	obj, _, err := ser.Decode(data, nil, nil)
	return obj, err
}

type objects struct {
	deployment *appsv1.Deployment
	service    *corev1.Service
	pdb        *policyv1.PodDisruptionBudget
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	secret     *corev1.Secret
}

func build(t *testing.T, dir string) objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	s := scheme(t)
	var o objects
	for _, r := range resources.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, err := decodeStrict(s, y)
		if err != nil {
			t.Fatalf("%s %s does not decode strictly: %v\n%s", r.GetKind(), r.GetName(), err, y)
		}
		switch v := obj.(type) {
		case *appsv1.Deployment:
			o.deployment = v
		case *corev1.Service:
			o.service = v
		case *policyv1.PodDisruptionBudget:
			o.pdb = v
		case *autoscalingv2.HorizontalPodAutoscaler:
			o.hpa = v
		case *corev1.Secret:
			o.secret = v
		default:
			t.Fatalf("unexpected object %T", obj)
		}
	}
	if o.deployment == nil || o.service == nil || o.pdb == nil || o.hpa == nil || o.secret == nil {
		t.Fatalf("missing objects: %+v", o)
	}
	return o
}

func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
		if a == name {
			return "", true
		}
	}
	return "", false
}

func TestKustomizationBuildsValidObjects(t *testing.T) {
	o := build(t, ".")
	d := o.deployment
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 1 {
		t.Fatalf("want one container and one init container, have %d and %d", len(pod.Containers), len(pod.InitContainers))
	}
	c, initC := pod.Containers[0], pod.InitContainers[0]
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
			t.Errorf("%s probe: %+v, want GET %s", name, p, path)
		}
	}
	probe("liveness", c.LivenessProbe, "/health")
	probe("readiness", c.ReadinessProbe, "/ready")
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds < 1 {
		t.Errorf("no preStop sleep: %+v", c.Lifecycle)
	}
	if _, ok := flagValue(c.Args, "--drain-delay"); !ok {
		t.Error("serve has no --drain-delay")
	}
	if grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds; grace == nil || *grace < 5+5+30 {
		t.Errorf("terminationGracePeriodSeconds %v is shorter than preStop + drain + shutdown timeout", grace)
	}
	mem := c.Resources.Requests.Memory()
	if mem.IsZero() || c.Resources.Limits.Memory().Cmp(*mem) < 0 || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("resources: %+v", c.Resources)
	}

	// The keys Secret is mounted as a directory (subPath mounts never see
	// updates) and --keys-file names its file.
	keysFile, ok := flagValue(c.Args, "--keys-file")
	if !ok {
		t.Fatal("serve has no --keys-file")
	}
	var keysVolume string
	for _, v := range pod.Volumes {
		if v.Secret != nil && v.Secret.SecretName == o.secret.Name {
			keysVolume = v.Name
		}
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		if m.Name == keysVolume {
			if m.SubPath != "" {
				t.Errorf("the keys Secret is mounted with subPath %q: updates would never reach the pod", m.SubPath)
			}
			mounted = filepath.Dir(keysFile) == filepath.Clean(m.MountPath) && o.secret.Data[filepath.Base(keysFile)] != nil
		}
	}
	if !mounted {
		t.Errorf("--keys-file %s is not a file of the mounted Secret %s (keys %v)", keysFile, o.secret.Name, keys(o.secret.Data))
	}

	// The init container pulls the model the server serves offline, into
	// the volume the server reads.
	model, _ := flagValue(c.Args, "--model")
	if len(initC.Args) != 2 || initC.Args[0] != "pull" || initC.Args[1] != model {
		t.Errorf("init container %v does not pull the served model %q", initC.Args, model)
	}
	if _, ok := flagValue(c.Args, "--offline"); !ok {
		t.Error("serve is not --offline although its model comes from the init container")
	}
	if env(initC, "HF_HUB_CACHE") == "" || env(initC, "HF_HUB_CACHE") != env(c, "HF_HUB_CACHE") {
		t.Errorf("HF_HUB_CACHE differs: init %q, server %q", env(initC, "HF_HUB_CACHE"), env(c, "HF_HUB_CACHE"))
	}

	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("the pod may run as root")
	}
	labels := d.Spec.Template.Labels
	for name, sel := range map[string]map[string]string{"deployment": d.Spec.Selector.MatchLabels, "service": o.service.Spec.Selector, "pdb": o.pdb.Spec.Selector.MatchLabels} {
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("%s selector %s=%s does not match the pod labels %v", name, k, v, labels)
			}
		}
	}
	if o.hpa.Spec.ScaleTargetRef.Kind != "Deployment" || o.hpa.Spec.ScaleTargetRef.Name != d.Name {
		t.Errorf("HPA targets %+v", o.hpa.Spec.ScaleTargetRef)
	}
	if len(o.hpa.Spec.Metrics) == 0 || o.hpa.Spec.Metrics[0].Pods == nil || o.hpa.Spec.Metrics[0].Pods.Metric.Name != "aimind_queue_tokens" {
		t.Errorf("HPA metrics: %+v", o.hpa.Spec.Metrics)
	}
	if d.Spec.Template.Annotations["prometheus.io/path"] != "/metrics" {
		t.Error("pods are not annotated for scraping /metrics")
	}
}

// TestKeysSecretHoldsHashesOnly: the shipped keys.json is a valid keys file
// without plaintext keys.
func TestKeysSecretHoldsHashesOnly(t *testing.T) {
	o := build(t, ".")
	data := o.secret.Data["keys.json"]
	var doc struct {
		Version int               `json:"aimind_keys"`
		Keys    []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.Version != 1 {
		t.Fatalf("keys.json: %v %s", err, data)
	}
	if plaintextKey.Match(data) {
		t.Fatal("keys.json holds a plaintext key")
	}
}

// TestStrictDecodingRefusesUnknownFields shows that the check above can fail:
// a misspelt field in a copy of the manifests stops the build.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	dir := t.TempDir()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".yaml") || n == "keys.json" {
			b, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			if n == "deployment.yaml" {
				b = []byte(strings.Replace(string(b), "readinessProbe:", "readynessProbe:", 1))
			}
			if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatal(err)
	}
	s := scheme(t)
	var errs []string
	for _, r := range resources.Resources() {
		y, _ := r.AsYAML()
		if _, err := decodeStrict(s, y); err != nil {
			errs = append(errs, fmt.Sprint(err))
		}
	}
	if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, "readynessProbe") }) {
		t.Fatalf("a misspelt field was accepted (errors: %v)", errs)
	}
}

var plaintextKey = regexp.MustCompile(`aimind_[0-9a-f]{12}_[0-9a-f]{64}`)

func env(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
