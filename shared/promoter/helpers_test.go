package promoter_test

import "github.com/regflow/regflow/shared/ecrevent"

func errMalformed() error { return ecrevent.ErrMalformed }
