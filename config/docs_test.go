package config

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestDocsShowTestdata: docs/config.md shows every configuration in
// testdata, each byte for byte, in a fenced block after a comment naming
// the file, so the page never drifts from the files the tests parse and
// serve.
func TestDocsShowTestdata(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)<!-- config/testdata/([a-z.]+) -->\n```[a-z]+\n(.*?)```\n")
	shown := map[string]string{}
	for _, m := range block.FindAllSubmatch(doc, -1) {
		shown[string(m[1])] = string(m[2])
	}
	yaml, _ := filepath.Glob("testdata/*.yaml")
	json, _ := filepath.Glob("testdata/*.json")
	files := append(yaml, json...)
	if len(files) == 0 {
		t.Fatal("no configuration files in testdata")
	}
	for _, path := range files {
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(path)
		got, ok := shown[name]
		switch {
		case !ok:
			t.Errorf("docs/config.md does not show %s (a block after <!-- config/testdata/%s -->)", path, name)
		case got != string(want):
			t.Errorf("docs/config.md shows %s as\n%s\nbut the file is\n%s", name, got, want)
		}
		delete(shown, name)
	}
	for name := range shown {
		t.Errorf("docs/config.md shows config/testdata/%s, which does not exist", name)
	}
}
