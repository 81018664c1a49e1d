package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nudgebot/nudgebot/config"
)

func TestStorageDriver(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        map[string]string
		driver     string
		url        string
		want       string // a problem the error must name; "" for none
	}{
		{name: "default is bbolt", driver: config.DriverBBolt},
		{name: "bbolt named", yaml: "storage:\n  driver: bbolt\n", driver: config.DriverBBolt},
		{name: "postgres with url", yaml: "storage:\n  driver: postgres\n  url: postgres://nb@db:5432/nudgebot\n", driver: config.DriverPostgres, url: "postgres://nb@db:5432/nudgebot"},
		{name: "postgres url from env", yaml: "storage:\n  driver: postgres\n", env: map[string]string{config.EnvDatabaseURL: " postgresql://nb@db/nudgebot\n"}, driver: config.DriverPostgres, url: "postgresql://nb@db/nudgebot"},
		{name: "env wins over file", yaml: "storage:\n  driver: postgres\n  url: postgres://a@file/x\n", env: map[string]string{config.EnvDatabaseURL: "postgres://b@env/x"}, driver: config.DriverPostgres, url: "postgres://b@env/x"},
		{name: "postgres without url", yaml: "storage:\n  driver: postgres\n", want: "set storage.url or NUDGEBOT_DATABASE_URL"},
		{name: "not a postgres url", yaml: "storage:\n  driver: postgres\n  url: mysql://root:s3cret@db/x\n", want: "c.yaml:3: storage.url is not a PostgreSQL URL"},
		{name: "url without host", yaml: "storage:\n  driver: postgres\n  url: postgres:///x\n", want: "is not a PostgreSQL URL"},
		{name: "url for bbolt", yaml: "storage:\n  url: postgres://nb@db/x\n", want: "c.yaml:2: storage.url is set, but storage.driver is bbolt"},
		{name: "unknown driver", yaml: "storage:\n  driver: sqlite\n", want: `c.yaml:2: storage.driver is "sqlite": use bbolt`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("c.yaml", []byte(tt.yaml), env(tt.env))
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err=%v, want it to say %q", err, tt.want)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("the error shows the URL's password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Storage.Driver != tt.driver || c.Storage.URL.Reveal() != tt.url {
				t.Errorf("driver %q url %q, want %q %q", c.Storage.Driver, c.Storage.URL.Reveal(), tt.driver, tt.url)
			}
			if s := fmt.Sprintf("%v %+v", c, c); tt.url != "" && strings.Contains(s, tt.url) {
				t.Errorf("printing the config shows the database URL: %s", s)
			}
		})
	}
}
