//go:build !nopostgres

package main

import (
	"bytes"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/nudgebot/nudgebot/config"
	"github.com/nudgebot/nudgebot/ops"
	"github.com/nudgebot/nudgebot/storage"
	"github.com/nudgebot/nudgebot/storage/storagetest"
)

// The Kubernetes example in deploy/kubernetes, as far as the test reads it.

type k8sMeta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"` // a number or a port's name
	} `yaml:"httpGet"`
	TimeoutSeconds   int `yaml:"timeoutSeconds"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type k8sDeployment struct {
	Kind     string  `yaml:"kind"`
	Metadata k8sMeta `yaml:"metadata"`
	Spec     struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
					RunAsGroup   int  `yaml:"runAsGroup"`
				} `yaml:"securityContext"`
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					Name      string    `yaml:"name"`
					ConfigMap *struct{} `yaml:"configMap"`
					EmptyDir  *struct{} `yaml:"emptyDir"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sData struct {
	Kind       string            `yaml:"kind"`
	Metadata   k8sMeta           `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

type k8sPDB struct {
	Kind     string  `yaml:"kind"`
	Metadata k8sMeta `yaml:"metadata"`
	Spec     struct {
		MinAvailable int `yaml:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	} `yaml:"spec"`
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	data := readFile(t, filepath.Join("../../deploy/kubernetes", file))
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		// Unknown fields are fine for Kubernetes, not for this reading:
		// decode again leniently, then insist on what the test needs.
		if err := yaml.Unmarshal(data, v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
}

// Ensure the Kubernetes example cannot rot silently: its config loads
// and validates with the values the Deployment gives it, the probes ask
// the port the config makes the bot listen on for paths the bot serves
// there, every Secret key it refers to exists, the mounts give the bot
// the places it writes with a read-only root, and the pods run as the
// image's user.
func TestKubernetesExample(t *testing.T) {
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	readYAML(t, "kustomization.yaml", &kust)
	for _, r := range kust.Resources {
		if _, err := os.Stat(filepath.Join("../../deploy/kubernetes", r)); err != nil {
			t.Errorf("kustomization.yaml lists %s: %v", r, err)
		}
	}
	var dep k8sDeployment
	var cm, secret k8sData
	var pdb k8sPDB
	readYAML(t, "deployment.yaml", &dep)
	readYAML(t, "configmap.yaml", &cm)
	readYAML(t, "secret.example.yaml", &secret)
	readYAML(t, "pdb.yaml", &pdb)
	if dep.Kind != "Deployment" || cm.Kind != "ConfigMap" || secret.Kind != "Secret" || pdb.Kind != "PodDisruptionBudget" {
		t.Fatalf("kinds %q %q %q %q", dep.Kind, cm.Kind, secret.Kind, pdb.Kind)
	}
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	// Replicas, labels and the disruption budget.
	if dep.Spec.Replicas != 2 {
		t.Errorf("replicas: %d, want 2", dep.Spec.Replicas)
	}
	for k, v := range dep.Spec.Selector.MatchLabels {
		if dep.Spec.Template.Metadata.Labels[k] != v || pdb.Spec.Selector.MatchLabels[k] != v {
			t.Errorf("label %s=%s: the pods or the PodDisruptionBudget do not carry what the Deployment selects", k, v)
		}
	}
	if len(pdb.Spec.Selector.MatchLabels) == 0 || pdb.Spec.MinAvailable < 1 || pdb.Spec.MinAvailable >= dep.Spec.Replicas {
		t.Errorf("PodDisruptionBudget minAvailable %d with %d replicas: it must keep one and let one go", pdb.Spec.MinAvailable, dep.Spec.Replicas)
	}

	// The image runs `nudgebot run` as 65532; args give it the config.
	docker := string(readFile(t, "../../Dockerfile"))
	if !strings.Contains(docker, `ENTRYPOINT ["/usr/local/bin/nudgebot", "run"]`) {
		t.Error("the Dockerfile's entrypoint is no longer `nudgebot run`; the Deployment's args assume it")
	}
	sc := pod.SecurityContext
	if !strings.Contains(docker, "USER "+strconv.Itoa(sc.RunAsUser)+":"+strconv.Itoa(sc.RunAsGroup)) || !sc.RunAsNonRoot {
		t.Errorf("the pod runs as %d:%d (non-root %v), not as the image's user", sc.RunAsUser, sc.RunAsGroup, sc.RunAsNonRoot)
	}
	if len(c.Args) != 2 || c.Args[0] != "-config" {
		t.Fatalf("args %q: want -config FILE", c.Args)
	}
	mounts := map[string]string{} // path → volume
	writable := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
		writable[m.MountPath] = !m.ReadOnly
	}
	cfgFile := c.Args[1]
	vol := mounts[path.Dir(cfgFile)]
	if !slices.ContainsFunc(pod.Volumes, func(v struct {
		Name      string    `yaml:"name"`
		ConfigMap *struct{} `yaml:"configMap"`
		EmptyDir  *struct{} `yaml:"emptyDir"`
	}) bool {
		return v.Name == vol && v.ConfigMap != nil
	}) {
		t.Errorf("%s is not on the ConfigMap's volume", cfgFile)
	}
	cfgText, ok := cm.Data[path.Base(cfgFile)]
	if !ok {
		t.Fatalf("the ConfigMap has no %s", path.Base(cfgFile))
	}

	// The environment, from the Secret, with values that validate.
	testValues := map[string]string{
		config.EnvBotToken: testBotToken, config.EnvAppToken: testAppToken,
		config.EnvDatabaseURL: "postgres://nudgebot@postgres.example:5432/nudgebot?sslmode=verify-full&pool_max_conns=10",
		"PGPASSWORD":          "secret",
		storage.EnvSecretKey:  base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32)),
	}
	env := map[string]string{}
	used := map[string]bool{}
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			env[e.Name] = e.Value
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		if ref.Name != secret.Metadata.Name {
			t.Errorf("%s comes from Secret %q; the example Secret is %q", e.Name, ref.Name, secret.Metadata.Name)
		}
		if _, ok := secret.StringData[ref.Key]; !ok {
			t.Errorf("%s comes from key %q, which the Secret lacks", e.Name, ref.Key)
		}
		used[ref.Key] = true
		v, ok := testValues[e.Name]
		if !ok {
			t.Errorf("%s: the test has no value for it; is it one nudgebot reads?", e.Name)
		}
		env[e.Name] = v
	}
	for k := range secret.StringData {
		if !used[k] {
			t.Errorf("the Secret's %q reaches no container", k)
		}
	}
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, cfgPath, cfgText)
	cfg, err := config.Load(cfgPath, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("the ConfigMap's config with the Deployment's environment: %v", err)
	}
	if !cfg.Storage.Postgres() {
		t.Error("the replicas' config is not on PostgreSQL: replicas cannot share a bbolt file")
	}
	if _, err := postgresKeys(cfg, func(k string) string { return env[k] }, nil); err != nil {
		t.Errorf("the reflection key: %v", err)
	}
	if c.SecurityContext.ReadOnlyRootFilesystem {
		for what, p := range map[string]string{"the socket (storage.path + .sock)": ops.SocketPath(cfg), "the backup token file": ops.BackupTokenPath(cfg)} {
			if !writable[path.Dir(p)] {
				t.Errorf("%s, %s, is not on a writable mount and the root file system is read-only", what, p)
			}
		}
	}
	if len(ops.SocketPath(cfg)) > 100 {
		t.Errorf("the socket's path %s is too long for a Unix socket", ops.SocketPath(cfg))
	}
	if grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second; grace <= cfg.ShutdownTimeout {
		t.Errorf("terminationGracePeriodSeconds %s leaves no room over shutdown_timeout %s", grace, cfg.ShutdownTimeout)
	}

	// The probes: the port metrics.addr listens on, paths it serves.
	_, port, err := net.SplitHostPort(cfg.Metrics.Addr)
	if err != nil || cfg.Metrics.Addr == "" {
		t.Fatalf("metrics.addr %q: the probes need the TCP listener: %v", cfg.Metrics.Addr, err)
	}
	if host, _, _ := net.SplitHostPort(cfg.Metrics.Addr); host != "0.0.0.0" && host != "" && host != "::" {
		t.Errorf("metrics.addr %s listens on %s only; the kubelet probes the pod's address", cfg.Metrics.Addr, host)
	}
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	db := storagetest.Open(t, storage.Options{})
	metrics := ops.NewMetrics("test", nil)
	metrics.Ticked(0) // the scheduler's first pass: ready
	srv := httptest.NewServer(ops.AdminHandler(ops.AdminDeps{Metrics: metrics, Bot: fakeConn(true), DB: db, Writes: db}))
	defer srv.Close()
	for name, probe := range map[string]*k8sProbe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if probe == nil {
			t.Errorf("no %s probe", name)
			continue
		}
		probePort := probe.HTTPGet.Port.Value
		if n, ok := ports[probePort]; ok {
			probePort = strconv.Itoa(n)
		}
		if probePort != port {
			t.Errorf("the %s probe asks port %s; metrics.addr listens on %s", name, probe.HTTPGet.Port.Value, port)
		}
		if probe.TimeoutSeconds <= 2 {
			t.Errorf("the %s probe's timeout %ds: /healthz waits up to 2s for the database", name, probe.TimeoutSeconds)
		}
		resp, err := http.Get(srv.URL + probe.HTTPGet.Path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("the %s probe's %s answers %d from a healthy, ready bot", name, probe.HTTPGet.Path, resp.StatusCode)
		}
	}
	if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("liveness is /healthz and readiness /readyz: one says restart me, the other hold traffic")
	}

	// Resources and the container's own security settings.
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("no %s request", r)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Error("no memory limit")
	}
	if e := c.SecurityContext.AllowPrivilegeEscalation; e == nil || *e || !c.SecurityContext.ReadOnlyRootFilesystem || !slices.Contains(c.SecurityContext.Capabilities.Drop, "ALL") {
		t.Error("the container must not escalate, must have a read-only root and drop every capability")
	}
}
