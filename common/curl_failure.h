// Why an HTTP exchange produced no status: libcurl's many error codes folded
// into the few reasons metrics and logs report. Shared by the upload client
// (common/http_client) and the Kubernetes pod watcher (k8s/pod_watch),
// so `reason`/`status` labels mean the same thing in both.
#pragma once

namespace ember {

enum class TransportFailure {
  kNone,
  kConnect,     // could not connect (refused, unreachable, DNS)
  kTimeout,     // no complete answer within the timeout
  kTls,         // handshake or certificate verification failed
  kConnection,  // connection reset or closed mid-request
  kAborted,     // aborted by the caller (shutdown)
  kOther,
};

// The metric label for `f`: none, connect, timeout, tls, connection,
// aborted or error.
const char* transport_failure_name(TransportFailure f);

// `curl_code` is a CURLcode (an int here, so this header needs no curl).
TransportFailure classify_curl_failure(int curl_code);

}  // namespace ember
