package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/jsii-runtime-go"

	"github.com/regflow/regflow/shared/metrics"
)

// addDashboard shows what operators watch, from the EMF metrics the functions write
// (shared/metrics names them), and alarms on the two outcomes nobody should learn about
// from a user: a promotion that failed for good and a sweep that did not finish everywhere.
// Call it before addAlarms, which gives every alarm the alarm topic.
func (b *pipeline) addDashboard() {
	five := awscdk.Duration_Minutes(jsii.Number(5))
	hour := awscdk.Duration_Hours(jsii.Number(1))
	m := func(name, stat string, period awscdk.Duration, dims map[string]*string) awscloudwatch.IMetric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String(metrics.Namespace), MetricName: jsii.String(name),
			Statistic: jsii.String(stat), Period: period, DimensionsMap: &dims,
		})
	}
	real := map[string]*string{metrics.DimMode: jsii.String("real")}
	approvalsFn := map[string]*string{metrics.DimFunction: jsii.String(fnApprovals)}

	failures := m(metrics.PromotionFailures, "Sum", five, nil)
	partial := m(metrics.SweepPartialRuns, "Sum", hour, nil)
	for _, a := range []struct {
		id, desc string
		metric   awscloudwatch.IMetric
	}{
		{"PromotionFailed", "a promotion failed after its last attempt: the request is failed and its Slack message says why", failures},
		{"SweepPartial", "a retention sweep ended partial: some repositories were not swept (see the sweep summary)", partial},
	} {
		b.alarms = append(b.alarms, awscloudwatch.NewAlarm(b.stack, jsii.String(a.id), &awscloudwatch.AlarmProps{
			AlarmName:          jsii.String(namePrefix + "-" + kebab(a.id)),
			AlarmDescription:   jsii.String(a.desc),
			Metric:             a.metric,
			Threshold:          jsii.Number(1),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		}))
	}

	graph := func(title string, left ...awscloudwatch.IMetric) awscloudwatch.IWidget {
		return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
			Title: jsii.String(title), Left: &left, Width: jsii.Number(8), Height: jsii.Number(6),
		})
	}
	d := awscloudwatch.NewDashboard(b.stack, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName: jsii.String(namePrefix),
	})
	d.AddWidgets(
		graph("Promotions", m(metrics.Promotions, "Sum", hour, nil), m(metrics.PromotionFailures, "Sum", hour, nil)),
		graph("Promotion duration (p50, p99 ms)", m(metrics.PromotionDuration, "p50", hour, nil), m(metrics.PromotionDuration, "p99", hour, nil)),
		graph("Bytes moved by promotions", m(metrics.PromotionBytes, "Sum", hour, nil)),
	)
	d.AddWidgets(
		graph("Slack answer latency (p99 ms; Slack gives up at 3000)", m(metrics.ApprovalAnswer, "p99", five, approvalsFn)),
		graph("Tag policy violations", m(metrics.TagViolations, "Sum", hour, nil)),
		graph("Gate blocks", m(metrics.GateBlocks, "Sum", hour, nil)),
	)
	d.AddWidgets(
		graph("Sweep: images deleted, kept, refused", m(metrics.SweepDeleted, "Sum", hour, real), m(metrics.SweepKept, "Sum", hour, real), m(metrics.SweepRefused, "Sum", hour, real)),
		graph("Sweep: bytes reclaimed (upper bound)", m(metrics.SweepBytes, "Sum", hour, real)),
		graph("Sweep: partial runs", partial),
	)
}
