// Command regflow-copy runs the ocicopy engine the way `regflow copy SRC DST` will, for
// bench/copy.sh until the CLI has the subcommand. It prints the Result as JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"

	"github.com/regflow/regflow/shared/ocicopy"
)

func main() {
	jobs := flag.Int("jobs", ocicopy.DefaultJobs, "blobs transferred at once")
	tag := flag.String("tag", "", "tag to apply in the target (default: the source's tag)")
	insecure := flag.String("insecure", "", "registry host to reach over plain HTTP (loopback already is)")
	noReferrers := flag.Bool("no-referrers", false, "copy the image only")
	verbose := flag.Bool("v", false, "log each blob and manifest")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: regflow-copy [flags] SRC DST")
		flag.PrintDefaults()
	}
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the copy to this file")
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	opts := []ocicopy.Option{
		ocicopy.WithJobs(*jobs),
		ocicopy.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))),
	}
	if *tag != "" {
		opts = append(opts, ocicopy.WithTag(*tag))
	}
	if *insecure != "" {
		opts = append(opts, ocicopy.WithInsecureRegistry(*insecure))
	}
	if *noReferrers {
		opts = append(opts, ocicopy.WithoutReferrers())
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := ocicopy.Copy(ctx, flag.Arg(0), flag.Arg(1), opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "regflow-copy:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(res)
}
