#include "common/url.h"

#include <curl/curl.h>

namespace ember {

void Url::Deleter::operator()(void* h) const { curl_url_cleanup(static_cast<CURLU*>(h)); }

Result<Url> Url::parse(const std::string& text) {
  CURLU* h = curl_url();
  if (!h) return Errorf("cannot allocate a URL handle");
  Url url(h);
  CURLUcode rc = curl_url_set(h, CURLUPART_URL, text.c_str(), 0);
  if (rc != CURLUE_OK) return Errorf("'%s' is not a valid URL: %s", text.c_str(), curl_url_strerror(rc));
  if (url.host().empty()) return Errorf("'%s' has no host", text.c_str());
  return url;
}

std::string Url::get(int part, unsigned flags) const {
  char* out = nullptr;
  if (curl_url_get(static_cast<CURLU*>(h_.get()), CURLUPart(part), &out, flags) != CURLUE_OK ||
      !out)
    return "";
  std::string s(out);
  curl_free(out);
  return s;
}

std::string Url::host() const { return get(CURLUPART_HOST, 0); }
std::string Url::explicit_port() const { return get(CURLUPART_PORT, 0); }
std::string Url::port() const { return get(CURLUPART_PORT, CURLU_DEFAULT_PORT); }

std::string Url::authority() const {
  std::string port = explicit_port();
  return port.empty() ? host() : host() + ":" + port;
}

Status Url::set_host(const std::string& host) {
  const bool bare_ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  const std::string h = bare_ipv6 ? "[" + host + "]" : host;
  CURLUcode rc = curl_url_set(static_cast<CURLU*>(h_.get()), CURLUPART_HOST, h.c_str(), 0);
  if (rc != CURLUE_OK) return Errorf("'%s' is not a valid host: %s", host.c_str(), curl_url_strerror(rc));
  return {};
}

Status Url::append_query(std::string_view name, std::string_view value) {
  // Escaped here rather than with CURLU_URLENCODE, which writes a space as
  // '+' (only form decoders read that as a space).
  const std::string pair = url_escape(name) + "=" + url_escape(value);
  CURLUcode rc =
      curl_url_set(static_cast<CURLU*>(h_.get()), CURLUPART_QUERY, pair.c_str(), CURLU_APPENDQUERY);
  if (rc != CURLUE_OK) return Errorf("cannot add '%s' to a URL: %s", pair.c_str(), curl_url_strerror(rc));
  return {};
}

std::string Url::str() const { return get(CURLUPART_URL, 0); }

std::string url_escape(std::string_view s) {
  // The handle argument is ignored since libcurl 7.82 (Debian 12 has 7.88).
  char* out = curl_easy_escape(nullptr, s.data(), int(s.size()));
  if (!out) return "";
  std::string r(out);
  curl_free(out);
  return r;
}

}  // namespace ember
