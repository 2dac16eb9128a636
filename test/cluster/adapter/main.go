// Command apiserver-receive-adapter is Knative Eventing's ApiServerSource receive adapter
// (knative.dev/eventing/cmd/apiserver_receive_adapter, same code and start-up), with one change for a
// shared test machine: its health-probe server, which Knative binds to :8080 on every interface for the
// kubelet, is off. The tests set the environment that Knative's ApiServerSource controller gives the
// adapter's Deployment (K_SINK, K_SOURCE_CONFIG, NAMESPACE, NAME, ...).
package main

import (
	filteredFactory "knative.dev/pkg/client/injection/kube/informers/factory/filtered"
	"knative.dev/pkg/signals"

	"knative.dev/eventing/pkg/adapter/apiserver"
	"knative.dev/eventing/pkg/adapter/v2"
	"knative.dev/eventing/pkg/auth"
	"knative.dev/eventing/pkg/eventingtls"
)

const component = "apiserversource"

func main() {
	ctx := signals.NewContext()
	ctx = adapter.WithInjectorEnabled(ctx)
	ctx = adapter.WithHealthProbesDisabled(ctx)

	ctx = filteredFactory.WithSelectors(ctx,
		auth.OIDCLabelSelector,
		eventingtls.TrustBundleLabelSelector,
	)

	adapter.MainWithContext(ctx, component, apiserver.NewEnvConfig, apiserver.NewAdapter)
}
