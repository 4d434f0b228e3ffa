// The single wiring point between the config and the Kubernetes pod watcher
// (k8s/pod_watch.h): `ember agent` and `ember targets` both get their
// PodIndex here, so neither knows how the watcher is built.
//
// Threading: make_pod_index() and wait_for_pod_sync() run on the caller's
// thread (the CLI's main thread); the watcher then runs its own thread and
// the returned index may be read from any thread.
#pragma once

#include <memory>

#include "agent/config/config.h"
#include "common/metrics.h"
#include "common/duration.h"
#include "common/result.h"
#include "k8s/pod_watch.h"

namespace ember {

// The pod watcher for `c`, started; null (and no error) when Kubernetes is
// off (kubernetes_enabled). An error says which setting is missing or wrong
// (e.g. no node name, unreadable token file).
Result<std::unique_ptr<PodWatcher>> make_pod_index(const Config& c, Metrics& metrics);

// Waits up to `timeout` for the watcher's first full list. False on timeout.
bool wait_for_pod_sync(const PodWatcher& watcher, Duration timeout);

}  // namespace ember
