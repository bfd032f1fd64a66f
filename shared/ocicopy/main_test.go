package ocicopy_test

import (
	"testing"

	"github.com/regflow/regflow/shared/local/ocitest"
	"github.com/regflow/regflow/shared/local/testenv"
)

func TestMain(m *testing.M) {
	ocitest.ServeIfChild() // the memory benchmark runs its registries in child processes
	testenv.Main(m)
}
