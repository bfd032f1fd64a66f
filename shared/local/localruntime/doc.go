// Package localruntime is a local Amazon ECS, AWS Lambda and AWS Systems Manager
// Parameter Store for one simulated account: the control-plane operations regflow calls
// (and the ones a test or demo needs to seed), on one loopback port, speaking the real
// wire protocols so the unmodified awsruntime adapter and aws-cli work against it with
// AWS_ENDPOINT_URL_ECS, AWS_ENDPOINT_URL_LAMBDA and AWS_ENDPOINT_URL_SSM:
//
//   - ECS, JSON 1.1 (X-Amz-Target AmazonEC2ContainerServiceV20141113.*): CreateCluster,
//     ListClusters, DescribeClusters, RegisterTaskDefinition (every field kept as sent),
//     DescribeTaskDefinition (with TAGS), ListTaskDefinitions, CreateService,
//     UpdateService, DescribeServices, ListServices, ListTasks, DescribeTasks;
//   - Lambda, REST-JSON under /2015-03-31/: CreateFunction (images only), GetFunction,
//     GetFunctionConfiguration, ListFunctions, UpdateFunctionCode, PublishVersion,
//     ListVersionsByFunction, CreateAlias, GetAlias, UpdateAlias, ListAliases;
//   - SSM, JSON 1.1 (AmazonSSM.*): PutParameter, GetParameter (with :version and :label
//     selectors), GetParameterHistory, LabelParameterVersion, DeleteParameter.
//
// ECS runs "tasks": a service's deployment stays IN_PROGRESS for DeploymentDelay on the
// clock, then its desiredCount tasks run the task definition's images, each container
// with the imageDigest it resolved (repo@digest as written; repo:tag through
// Options.ResolveImage). Each step emits an "ECS Deployment State Change" event shaped as
// AWS's samples: SERVICE_DEPLOYMENT_IN_PROGRESS, then SERVICE_DEPLOYMENT_COMPLETED; or,
// for an image marked bad with MarkBad, SERVICE_DEPLOYMENT_FAILED and, when the service's
// circuit breaker has rollback on, a rollback deployment to the last completed task
// definition (IN_PROGRESS "ECS deployment circuit breaker: rolling back to deploymentId
// …", then COMPLETED). Without the breaker a failing deployment stays IN_PROGRESS and the
// old tasks keep running, as in ECS.
//
// Lambda follows Lambda where moto does not: UpdateFunctionCode leaves LastUpdateStatus
// InProgress for UpdateDelay (PublishVersion meanwhile is ResourceConflictException),
// then Successful; PublishVersion returns the last version when $LATEST has not changed
// since; GetFunction's Code.ResolvedImageUri is repo@digest.
//
// Time: Options.Clock (share the local ECR's) dates everything and times deployments and
// updates; the server settles due ones every TickInterval, or at once with Tick. SigV4
// signatures are not verified. Faults: SetFault(op, Fault{...}) per operation name.
package localruntime
