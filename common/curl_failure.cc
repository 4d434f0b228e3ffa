#include "common/curl_failure.h"

#include <curl/curl.h>

namespace ember {

TransportFailure classify_curl_failure(int curl_code) {
  switch (CURLcode(curl_code)) {
    case CURLE_OK: return TransportFailure::kNone;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return TransportFailure::kConnect;
    case CURLE_OPERATION_TIMEDOUT: return TransportFailure::kTimeout;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
      return TransportFailure::kTls;
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return TransportFailure::kConnection;
    case CURLE_ABORTED_BY_CALLBACK: return TransportFailure::kAborted;
    default: return TransportFailure::kOther;
  }
}

const char* transport_failure_name(TransportFailure f) {
  switch (f) {
    case TransportFailure::kNone: return "none";
    case TransportFailure::kConnect: return "connect";
    case TransportFailure::kTimeout: return "timeout";
    case TransportFailure::kTls: return "tls";
    case TransportFailure::kConnection: return "connection";
    case TransportFailure::kAborted: return "aborted";
    case TransportFailure::kOther: return "error";
  }
  return "error";
}

}  // namespace ember
