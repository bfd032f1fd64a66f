package localruntime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/regflow/regflow/shared/ecsevent"
)

type cluster struct {
	name      string
	arn       string
	services  map[string]*service
	order     []string // service names in creation order
	tasks     map[string]*task
	taskOrder []string
	createdAt time.Time
}

type taskDef struct {
	arn      string
	family   string
	revision int
	// body is the registered definition as ECS describes it (every field the caller sent,
	// plus the ones ECS adds); images are the containers' images by name, in order.
	body       map[string]any
	containers []containerSpec
	tags       []any
	status     string
}

type containerSpec struct{ name, image string }

type service struct {
	name, arn     string
	cluster       *cluster
	taskDef       *taskDef
	desired       int
	launchType    string
	breaker       bool // deploymentCircuitBreaker enable with rollback
	breakerRaw    map[string]any
	deployments   []*deployment // PRIMARY first
	createdAt     time.Time
	networkConfig any
}

type deployment struct {
	id          string
	taskDef     *taskDef
	status      string // PRIMARY, ACTIVE, INACTIVE
	rollout     string // IN_PROGRESS, COMPLETED, FAILED
	reason      string
	createdAt   time.Time
	updatedAt   time.Time
	due         time.Time
	rollbackOf  string // set on a circuit breaker's rollback deployment
	failedTasks int
	settled     bool
	// stuck is a deployment whose tasks fail without a circuit breaker: it never ends.
	stuck bool
}

type task struct {
	arn, id    string
	service    *service
	deployment string
	taskDef    *taskDef
	digests    []string
	createdAt  time.Time
}

var ecsNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

func (s *Server) ecsOps() map[string]jsonOp {
	return map[string]jsonOp{
		"CreateCluster":          s.createCluster,
		"ListClusters":           s.listClusters,
		"DescribeClusters":       s.describeClusters,
		"RegisterTaskDefinition": s.registerTaskDefinition,
		"DescribeTaskDefinition": s.describeTaskDefinition,
		"ListTaskDefinitions":    s.listTaskDefinitions,
		"CreateService":          s.createService,
		"UpdateService":          s.updateService,
		"DescribeServices":       s.describeServices,
		"ListServices":           s.listServices,
		"ListTasks":              s.listTasks,
		"DescribeTasks":          s.describeTasks,
	}
}

func clientError(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "ClientException", format, args...)
}

func invalidParameter(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "InvalidParameterException", format, args...)
}

func clusterNotFound() *apiError {
	return newError(http.StatusBadRequest, "ClusterNotFoundException", "Cluster not found.")
}

func serviceNotFound() *apiError {
	return newError(http.StatusBadRequest, "ServiceNotFoundException", "Service not found.")
}

// lastSegment takes a name or an ARN (…:cluster/name, …:service/cluster/name).
func lastSegment(ref string) string {
	if i := strings.LastIndex(ref, "/"); i >= 0 && strings.HasPrefix(ref, "arn:") {
		return ref[i+1:]
	}
	return ref
}

func (s *Server) clusterARN(name string) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/%s", s.region, s.account, name)
}

// findCluster resolves a cluster by name or ARN ("" is the default cluster), s.mu held.
func (s *Server) findCluster(ref string) (*cluster, *apiError) {
	if ref == "" {
		ref = "default"
	}
	c, ok := s.clusters[lastSegment(ref)]
	if !ok {
		return nil, clusterNotFound()
	}
	return c, nil
}

func (s *Server) clusterOut(c *cluster) map[string]any {
	running, active := 0, 0
	for _, sv := range c.services {
		active++
		running += sv.runningCount()
	}
	return map[string]any{
		"clusterArn": c.arn, "clusterName": c.name, "status": "ACTIVE",
		"registeredContainerInstancesCount": 0, "runningTasksCount": running, "pendingTasksCount": 0,
		"activeServicesCount": active, "statistics": []any{}, "tags": []any{}, "settings": []any{map[string]any{"name": "containerInsights", "value": "disabled"}},
		"capacityProviders": []any{}, "defaultCapacityProviderStrategy": []any{},
	}
}

func (s *Server) createCluster(_ context.Context, body []byte) (any, *apiError) {
	var in struct {
		ClusterName string `json:"clusterName"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.ClusterName == "" {
		in.ClusterName = "default"
	}
	if !ecsNameRE.MatchString(in.ClusterName) {
		return nil, invalidParameter("Clusters can contain up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clusters[in.ClusterName]
	if !ok { // CreateCluster of an existing cluster returns it, as ECS does
		c = &cluster{name: in.ClusterName, arn: s.clusterARN(in.ClusterName), services: map[string]*service{}, tasks: map[string]*task{}, createdAt: s.clock.Now()}
		s.clusters[in.ClusterName] = c
	}
	return map[string]any{"cluster": s.clusterOut(c)}, nil
}

func (s *Server) listClusters(_ context.Context, body []byte) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	arns := []string{}
	for _, c := range s.clusters {
		arns = append(arns, c.arn)
	}
	sort.Strings(arns)
	return map[string]any{"clusterArns": arns}, nil
}

func (s *Server) describeClusters(_ context.Context, body []byte) (any, *apiError) {
	var in struct {
		Clusters []string `json:"clusters"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if len(in.Clusters) == 0 {
		in.Clusters = []string{"default"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out, failures := []any{}, []any{}
	for _, ref := range in.Clusters {
		if c, ok := s.clusters[lastSegment(ref)]; ok {
			out = append(out, s.clusterOut(c))
		} else {
			failures = append(failures, map[string]any{"arn": s.clusterARN(lastSegment(ref)), "reason": "MISSING"})
		}
	}
	return map[string]any{"clusters": out, "failures": failures}, nil
}

func (s *Server) registerTaskDefinition(_ context.Context, body []byte) (any, *apiError) {
	var in map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		return nil, &apiError{status: http.StatusBadRequest, code: "SerializationException", message: "Start of structure or map found where not expected."}
	}
	family, _ := in["family"].(string)
	if !ecsNameRE.MatchString(family) {
		return nil, clientError("Family contains invalid characters. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.")
	}
	defs, _ := in["containerDefinitions"].([]any)
	if len(defs) == 0 {
		return nil, clientError("Container list cannot be empty.")
	}
	var specs []containerSpec
	for _, d := range defs {
		m, _ := d.(map[string]any)
		name, _ := m["name"].(string)
		image, _ := m["image"].(string)
		if name == "" || image == "" {
			return nil, clientError("Container.name and Container.image should not be null or empty.")
		}
		_, mem := m["memory"]
		_, res := m["memoryReservation"]
		if _, taskMem := in["memory"]; !taskMem && !mem && !res {
			return nil, clientError("Invalid setting for container '%s'. At least one of 'memory' or 'memoryReservation' must be specified.", name)
		}
		specs = append(specs, containerSpec{name, image})
	}
	tags, _ := in["tags"].([]any)
	delete(in, "tags")
	s.mu.Lock()
	defer s.mu.Unlock()
	rev := len(s.families[family]) + 1
	arn := fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/%s:%d", s.region, s.account, family, rev)
	in["taskDefinitionArn"], in["revision"], in["status"] = arn, rev, "ACTIVE"
	in["registeredAt"] = epochTime(s.clock.Now())
	in["registeredBy"] = fmt.Sprintf("arn:aws:iam::%s:root", s.account)
	for _, k := range []string{"volumes", "placementConstraints", "requiresAttributes"} {
		if _, ok := in[k]; !ok {
			in[k] = []any{}
		}
	}
	compat := []any{"EC2"}
	if rc, ok := in["requiresCompatibilities"].([]any); ok {
		for _, c := range rc {
			if c == "FARGATE" {
				compat = []any{"EC2", "FARGATE"}
			}
		}
	}
	in["compatibilities"] = compat
	td := &taskDef{arn: arn, family: family, revision: rev, body: in, containers: specs, tags: tags, status: "ACTIVE"}
	s.families[family] = append(s.families[family], td)
	if tags == nil {
		tags = []any{}
	}
	return map[string]any{"taskDefinition": td.body, "tags": tags}, nil
}

// findTaskDef resolves family, family:revision or an ARN (s.mu held).
func (s *Server) findTaskDef(ref string) *taskDef {
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		_, name, _ = strings.Cut(ref, ":task-definition/")
	}
	family, rev, hasRev := strings.Cut(name, ":")
	revs := s.families[family]
	if !hasRev {
		for i := len(revs) - 1; i >= 0; i-- {
			if revs[i].status == "ACTIVE" {
				return revs[i]
			}
		}
		return nil
	}
	n, err := strconv.Atoi(rev)
	if err != nil || n < 1 || n > len(revs) {
		return nil
	}
	return revs[n-1]
}

func (s *Server) describeTaskDefinition(_ context.Context, body []byte) (any, *apiError) {
	var in struct {
		TaskDefinition string   `json:"taskDefinition"`
		Include        []string `json:"include"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	td := s.findTaskDef(in.TaskDefinition)
	if td == nil {
		return nil, clientError("Unable to describe task definition.")
	}
	out := map[string]any{"taskDefinition": td.body}
	for _, inc := range in.Include {
		if inc == "TAGS" {
			tags := td.tags
			if tags == nil {
				tags = []any{}
			}
			out["tags"] = tags
		}
	}
	return out, nil
}

func (s *Server) listTaskDefinitions(_ context.Context, body []byte) (any, *apiError) {
	var in struct {
		FamilyPrefix string `json:"familyPrefix"`
		Status       string `json:"status"`
		Sort         string `json:"sort"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.Status == "" {
		in.Status = "ACTIVE"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*taskDef
	for fam, revs := range s.families {
		if strings.HasPrefix(fam, in.FamilyPrefix) {
			for _, td := range revs {
				if td.status == in.Status {
					all = append(all, td)
				}
			}
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].family != all[j].family {
			return all[i].family < all[j].family
		}
		return all[i].revision < all[j].revision
	})
	if in.Sort == "DESC" {
		for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
			all[i], all[j] = all[j], all[i]
		}
	}
	arns := []string{}
	for _, td := range all {
		arns = append(arns, td.arn)
	}
	return map[string]any{"taskDefinitionArns": arns}, nil
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) newDeploymentID() string {
	s.seq++
	return fmt.Sprintf("ecs-svc/%019d", uint64(s.clock.Now().UnixNano()/1000)%1e13*1e6+s.seq%1e6)
}

type serviceIn struct {
	Cluster                 string `json:"cluster"`
	ServiceName             string `json:"serviceName"`
	Service                 string `json:"service"`
	TaskDefinition          string `json:"taskDefinition"`
	DesiredCount            *int   `json:"desiredCount"`
	LaunchType              string `json:"launchType"`
	ForceNewDeployment      bool   `json:"forceNewDeployment"`
	DeploymentConfiguration *struct {
		DeploymentCircuitBreaker *struct {
			Enable   bool `json:"enable"`
			Rollback bool `json:"rollback"`
		} `json:"deploymentCircuitBreaker"`
	} `json:"deploymentConfiguration"`
	NetworkConfiguration any `json:"networkConfiguration"`
}

func (s *Server) createService(_ context.Context, body []byte) (any, *apiError) {
	var in serviceIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if !ecsNameRE.MatchString(in.ServiceName) {
		return nil, invalidParameter("Name can contain up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.findCluster(in.Cluster)
	if e != nil {
		return nil, e
	}
	if _, dup := c.services[in.ServiceName]; dup {
		return nil, invalidParameter("Creation of service was not idempotent.")
	}
	td := s.findTaskDef(in.TaskDefinition)
	if td == nil {
		return nil, invalidParameter("TaskDefinition not found.")
	}
	now := s.clock.Now()
	sv := &service{name: in.ServiceName, arn: fmt.Sprintf("arn:aws:ecs:%s:%s:service/%s/%s", s.region, s.account, c.name, in.ServiceName),
		cluster: c, taskDef: td, desired: 1, launchType: in.LaunchType, createdAt: now, networkConfig: in.NetworkConfiguration}
	if sv.launchType == "" {
		sv.launchType = "EC2"
	}
	if in.DesiredCount != nil {
		sv.desired = *in.DesiredCount
	}
	if dc := in.DeploymentConfiguration; dc != nil && dc.DeploymentCircuitBreaker != nil {
		sv.breaker = dc.DeploymentCircuitBreaker.Enable && dc.DeploymentCircuitBreaker.Rollback
		sv.breakerRaw = map[string]any{"enable": dc.DeploymentCircuitBreaker.Enable, "rollback": dc.DeploymentCircuitBreaker.Rollback}
	}
	c.services[sv.name] = sv
	c.order = append(c.order, sv.name)
	s.startDeployment(sv, td, "", now)
	return map[string]any{"service": s.serviceOut(sv)}, nil
}

func (s *Server) updateService(_ context.Context, body []byte) (any, *apiError) {
	var in serviceIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.findCluster(in.Cluster)
	if e != nil {
		return nil, e
	}
	sv, ok := c.services[lastSegment(in.Service)]
	if !ok {
		return nil, serviceNotFound()
	}
	td := sv.taskDef
	if in.TaskDefinition != "" {
		if td = s.findTaskDef(in.TaskDefinition); td == nil {
			return nil, invalidParameter("TaskDefinition not found.")
		}
	}
	if in.DesiredCount != nil {
		sv.desired = *in.DesiredCount
	}
	if dc := in.DeploymentConfiguration; dc != nil && dc.DeploymentCircuitBreaker != nil {
		sv.breaker = dc.DeploymentCircuitBreaker.Enable && dc.DeploymentCircuitBreaker.Rollback
		sv.breakerRaw = map[string]any{"enable": dc.DeploymentCircuitBreaker.Enable, "rollback": dc.DeploymentCircuitBreaker.Rollback}
	}
	// ECS starts a deployment only for a new task definition (or when forced): the same
	// one again changes nothing.
	if td != sv.taskDef || in.ForceNewDeployment {
		s.startDeployment(sv, td, "", s.clock.Now())
	}
	return map[string]any{"service": s.serviceOut(sv)}, nil
}

// startDeployment makes td the service's PRIMARY deployment (s.mu held).
func (s *Server) startDeployment(sv *service, td *taskDef, rollbackOf string, now time.Time) *deployment {
	for _, d := range sv.deployments {
		if d.status == "PRIMARY" {
			d.status = "ACTIVE"
			d.updatedAt = now
		}
	}
	d := &deployment{id: s.newDeploymentID(), taskDef: td, status: "PRIMARY", rollout: "IN_PROGRESS", createdAt: now, updatedAt: now,
		due: now.Add(s.opts.DeploymentDelay), rollbackOf: rollbackOf}
	d.reason = "ECS deployment " + d.id + " in progress."
	if rollbackOf != "" {
		d.reason = "ECS deployment circuit breaker: rolling back to deploymentId " + rollbackOf + "."
	}
	sv.deployments = append([]*deployment{d}, sv.deployments...)
	sv.taskDef = td
	s.emitDeployment(sv.arn, ecsevent.InProgress, d.id, d.reason, now)
	return d
}

// settleDeployments completes or fails the deployments that are due (s.mu held).
func (s *Server) settleDeployments(now time.Time) {
	for _, cn := range sortedKeys(s.clusters) {
		c := s.clusters[cn]
		for _, name := range c.order {
			sv := c.services[name]
			if len(sv.deployments) == 0 {
				continue
			}
			d := sv.deployments[0]
			if d.settled || d.rollout != "IN_PROGRESS" || now.Before(d.due) {
				continue
			}
			s.settle(sv, d, now)
		}
	}
}

func (s *Server) settle(sv *service, d *deployment, now time.Time) {
	digests, bad := s.resolveDigests(d.taskDef)
	if !bad {
		d.settled, d.rollout, d.reason, d.updatedAt = true, "COMPLETED", "ECS deployment "+d.id+" completed.", now
		s.replaceTasks(sv, d, digests, now)
		// The older deployments drained: ECS drops them from the service.
		sv.deployments = sv.deployments[:1]
		s.emitDeployment(sv.arn, ecsevent.Completed, d.id, d.reason, now)
		return
	}
	d.failedTasks = sv.desired
	if !sv.breaker {
		// Without the circuit breaker ECS keeps trying to start tasks: the deployment stays
		// IN_PROGRESS and the old tasks keep running.
		d.due, d.stuck = now.Add(s.opts.DeploymentDelay), true
		return
	}
	d.settled, d.rollout, d.reason, d.updatedAt = true, "FAILED", "ECS deployment circuit breaker: task failed to start.", now
	s.emitDeployment(sv.arn, ecsevent.Failed, d.id, d.reason, now)
	var prev *deployment
	for _, o := range sv.deployments[1:] {
		if o.rollout == "COMPLETED" {
			prev = o
			break
		}
	}
	if prev == nil {
		return // nothing to roll back to: the service runs no task
	}
	d.status = "ACTIVE"
	s.startDeployment(sv, prev.taskDef, prev.id, now)
}

// resolveDigests is the digest each container of td runs, and whether any is marked bad
// or cannot be resolved (a task that fails to start).
func (s *Server) resolveDigests(td *taskDef) ([]string, bool) {
	out := make([]string, len(td.containers))
	bad := false
	for i, c := range td.containers {
		dg := imageDigest(c.image)
		if dg == "" && s.opts.ResolveImage != nil {
			// The resolver reaches the local ECR, not this server: no lock is needed for
			// it, and this server's lock held across it is only a short local call.
			// ("", nil) is an image the resolver does not know (another registry): it runs
			// without a digest; an error is an image that cannot be pulled.
			if r, err := s.opts.ResolveImage(s.ctx, c.image); err == nil {
				dg = r
			} else {
				s.log.Debug("image does not resolve", "image", c.image, "err", err)
				bad = true // CannotPullContainerError
			}
		}
		out[i] = dg
		if dg != "" && s.bad[dg] {
			bad = true
		}
	}
	return out, bad
}

func imageDigest(image string) string {
	if _, d, ok := strings.Cut(image, "@"); ok {
		return d
	}
	return ""
}

func (s *Server) replaceTasks(sv *service, d *deployment, digests []string, now time.Time) {
	c := sv.cluster
	keep := c.taskOrder[:0]
	for _, id := range c.taskOrder {
		if c.tasks[id].service == sv {
			delete(c.tasks, id)
			continue
		}
		keep = append(keep, id)
	}
	c.taskOrder = keep
	for range sv.desired {
		id := randomHex(32)
		t := &task{arn: fmt.Sprintf("arn:aws:ecs:%s:%s:task/%s/%s", s.region, s.account, c.name, id), id: id, service: sv,
			deployment: d.id, taskDef: d.taskDef, digests: digests, createdAt: now}
		c.tasks[id] = t
		c.taskOrder = append(c.taskOrder, id)
	}
}

func (sv *service) runningCount() int {
	n := 0
	for _, t := range sv.cluster.tasks {
		if t.service == sv {
			n++
		}
	}
	return n
}

func (s *Server) serviceOut(sv *service) map[string]any {
	deps := []any{}
	for _, d := range sv.deployments {
		running := 0
		for _, t := range sv.cluster.tasks {
			if t.service == sv && t.deployment == d.id {
				running++
			}
		}
		dm := map[string]any{
			"id": d.id, "status": d.status, "taskDefinition": d.taskDef.arn, "desiredCount": sv.desired,
			"pendingCount": 0, "runningCount": running, "failedTasks": d.failedTasks,
			"createdAt": epochTime(d.createdAt), "updatedAt": epochTime(d.updatedAt), "launchType": sv.launchType,
			"rolloutState": d.rollout, "rolloutStateReason": d.reason,
		}
		if sv.networkConfig != nil {
			dm["networkConfiguration"] = sv.networkConfig
		}
		deps = append(deps, dm)
	}
	breaker := sv.breakerRaw
	if breaker == nil {
		breaker = map[string]any{"enable": false, "rollback": false}
	}
	out := map[string]any{
		"serviceArn": sv.arn, "serviceName": sv.name, "clusterArn": sv.cluster.arn, "loadBalancers": []any{}, "serviceRegistries": []any{},
		"status": "ACTIVE", "desiredCount": sv.desired, "runningCount": sv.runningCount(), "pendingCount": 0, "launchType": sv.launchType,
		"taskDefinition":          sv.taskDef.arn,
		"deploymentConfiguration": map[string]any{"deploymentCircuitBreaker": breaker, "maximumPercent": 200, "minimumHealthyPercent": 100},
		"deployments":             deps, "events": []any{}, "createdAt": epochTime(sv.createdAt), "placementConstraints": []any{}, "placementStrategy": []any{},
		"schedulingStrategy": "REPLICA", "deploymentController": map[string]any{"type": "ECS"}, "createdBy": fmt.Sprintf("arn:aws:iam::%s:root", s.account),
		"enableECSManagedTags": false, "propagateTags": "NONE", "enableExecuteCommand": false,
	}
	if sv.networkConfig != nil {
		out["networkConfiguration"] = sv.networkConfig
	}
	return out
}

func (s *Server) describeServices(_ context.Context, body []byte) (any, *apiError) {
	var in struct {
		Cluster  string   `json:"cluster"`
		Services []string `json:"services"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if len(in.Services) == 0 || len(in.Services) > 10 {
		return nil, invalidParameter("services can have at most 10 items and at least 1.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.findCluster(in.Cluster)
	if e != nil {
		return nil, e
	}
	out, failures := []any{}, []any{}
	for _, ref := range in.Services {
		if sv, ok := c.services[lastSegment(ref)]; ok {
			out = append(out, s.serviceOut(sv))
		} else {
			// The failure names the service in the old ARN form, without its cluster.
			failures = append(failures, map[string]any{"arn": fmt.Sprintf("arn:aws:ecs:%s:%s:service/%s", s.region, s.account, lastSegment(ref)), "reason": "MISSING"})
		}
	}
	return map[string]any{"services": out, "failures": failures}, nil
}

// page cuts a sorted list at an opaque token (the last item of the previous page).
func page(items []string, token string, maxResults, limit int) ([]string, string, *apiError) {
	if maxResults <= 0 {
		maxResults = limit
	}
	if maxResults > 100 {
		return nil, "", invalidParameter("maxResults can be between 1 and 100.")
	}
	start := 0
	if token != "" {
		raw, err := hex.DecodeString(token)
		if err != nil {
			return nil, "", invalidParameter("Invalid token %s", token)
		}
		start = sort.SearchStrings(items, string(raw))
		if start < len(items) && items[start] == string(raw) {
			start++
		}
	}
	end := min(start+maxResults, len(items))
	next := ""
	if end < len(items) {
		next = hex.EncodeToString([]byte(items[end-1]))
	}
	return items[start:end], next, nil
}

func (s *Server) listServices(_ context.Context, body []byte) (any, *apiError) {
	var in struct {
		Cluster    string `json:"cluster"`
		MaxResults int    `json:"maxResults"`
		NextToken  string `json:"nextToken"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.findCluster(in.Cluster)
	if e != nil {
		return nil, e
	}
	arns := []string{}
	for _, sv := range c.services {
		arns = append(arns, sv.arn)
	}
	sort.Strings(arns)
	pg, next, e := page(arns, in.NextToken, in.MaxResults, 10)
	if e != nil {
		return nil, e
	}
	out := map[string]any{"serviceArns": pg}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

func (s *Server) listTasks(_ context.Context, body []byte) (any, *apiError) {
	var in struct {
		Cluster       string `json:"cluster"`
		ServiceName   string `json:"serviceName"`
		Family        string `json:"family"`
		DesiredStatus string `json:"desiredStatus"`
		MaxResults    int    `json:"maxResults"`
		NextToken     string `json:"nextToken"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.findCluster(in.Cluster)
	if e != nil {
		return nil, e
	}
	var only *service
	if in.ServiceName != "" {
		sv, ok := c.services[lastSegment(in.ServiceName)]
		if !ok {
			return nil, serviceNotFound()
		}
		only = sv
	}
	arns := []string{}
	if in.DesiredStatus != "STOPPED" { // stopped tasks are not kept
		for _, t := range c.tasks {
			if (only == nil || t.service == only) && (in.Family == "" || t.taskDef.family == in.Family) {
				arns = append(arns, t.arn)
			}
		}
	}
	sort.Strings(arns)
	pg, next, e := page(arns, in.NextToken, in.MaxResults, 100)
	if e != nil {
		return nil, e
	}
	out := map[string]any{"taskArns": pg}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

func (s *Server) describeTasks(_ context.Context, body []byte) (any, *apiError) {
	var in struct {
		Cluster string   `json:"cluster"`
		Tasks   []string `json:"tasks"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if len(in.Tasks) == 0 || len(in.Tasks) > 100 {
		return nil, invalidParameter("Tasks cannot be empty.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, e := s.findCluster(in.Cluster)
	if e != nil {
		return nil, e
	}
	out, failures := []any{}, []any{}
	for _, ref := range in.Tasks {
		t, ok := c.tasks[lastSegment(ref)]
		if !ok {
			failures = append(failures, map[string]any{"arn": ref, "reason": "MISSING"})
			continue
		}
		out = append(out, s.taskOut(t))
	}
	return map[string]any{"tasks": out, "failures": failures}, nil
}

func (s *Server) taskOut(t *task) map[string]any {
	containers, overrides := []any{}, []any{}
	for i, c := range t.taskDef.containers {
		cm := map[string]any{
			"containerArn": fmt.Sprintf("arn:aws:ecs:%s:%s:container/%s/%s/%s", s.region, s.account, t.service.cluster.name, t.id, newUUID()),
			"taskArn":      t.arn, "name": c.name, "image": c.image, "lastStatus": "RUNNING",
			"runtimeId": t.id + "-" + strconv.Itoa(i), "networkBindings": []any{}, "networkInterfaces": []any{}, "healthStatus": "UNKNOWN",
		}
		if t.digests[i] != "" {
			cm["imageDigest"] = t.digests[i]
		}
		containers = append(containers, cm)
		overrides = append(overrides, map[string]any{"name": c.name})
	}
	out := map[string]any{
		"taskArn": t.arn, "clusterArn": t.service.cluster.arn, "taskDefinitionArn": t.taskDef.arn, "lastStatus": "RUNNING", "desiredStatus": "RUNNING",
		"launchType": t.service.launchType, "group": "service:" + t.service.name, "startedBy": t.deployment, "containers": containers,
		"overrides": map[string]any{"containerOverrides": overrides, "inferenceAcceleratorOverrides": []any{}},
		"createdAt": epochTime(t.createdAt), "startedAt": epochTime(t.createdAt), "connectivity": "CONNECTED", "connectivityAt": epochTime(t.createdAt),
		"pullStartedAt": epochTime(t.createdAt), "pullStoppedAt": epochTime(t.createdAt), "version": 2, "healthStatus": "UNKNOWN",
		"availabilityZone": s.region + "a", "attachments": []any{}, "tags": []any{},
	}
	for _, k := range []string{"cpu", "memory"} {
		if v, ok := t.taskDef.body[k]; ok {
			out[k] = v
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// InProgress counts the services whose deployment will still complete or fail (not the
// ones stuck retrying without a circuit breaker): zero means every rollout has ended.
func (s *Server) InProgress() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.clusters {
		for _, sv := range c.services {
			if d := sv.deployments[0]; d.rollout == "IN_PROGRESS" && !d.stuck {
				n++
			}
		}
	}
	return n
}

// MarkBad makes tasks of images with this digest fail to start: a deployment to it fails
// (and the circuit breaker, when on, rolls the service back).
func (s *Server) MarkBad(digest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bad[digest] = true
}

// MarkGood undoes MarkBad.
func (s *Server) MarkGood(digest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.bad, digest)
}

// Running is what one service runs: its tasks' digests by container.
type Running struct {
	Cluster, Service string
	TaskDefinition   string
	// Tasks is the number of running tasks; Digests the digests they run, by container.
	Tasks   int
	Digests map[string]string
}

// Services lists what every service runs (for demos and tests; regflow reads the API).
func (s *Server) Services() []Running {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Running
	for _, cn := range sortedKeys(s.clusters) {
		c := s.clusters[cn]
		for _, name := range c.order {
			sv := c.services[name]
			r := Running{Cluster: c.name, Service: sv.name, TaskDefinition: sv.taskDef.arn, Digests: map[string]string{}}
			for _, t := range c.tasks {
				if t.service != sv {
					continue
				}
				r.Tasks++
				for i, ct := range t.taskDef.containers {
					r.Digests[ct.name] = t.digests[i]
				}
			}
			out = append(out, r)
		}
	}
	return out
}
