package dev.pocketllm;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLHandshakeException;

/** A {@link Transport} on java.net.http: TLS with the given SSLContext (default: the platform's trust store). */
public final class HttpsTransport implements Transport {
  private final HttpClient client;
  private final String base;
  private final Duration timeout;

  public HttpsTransport(String baseUrl, SSLContext ssl, Duration timeout) {
    HttpClient.Builder b = HttpClient.newBuilder().connectTimeout(timeout).version(HttpClient.Version.HTTP_1_1);
    if (ssl != null) b.sslContext(ssl);
    this.client = b.build();
    this.base = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
    this.timeout = timeout;
  }

  @Override public Response send(String method, String path, byte[] body, String bearer) throws IOException {
    HttpRequest.Builder r = HttpRequest.newBuilder(URI.create(base + path)).timeout(timeout);
    if (bearer != null && !bearer.isEmpty()) r.header("Authorization", "Bearer " + bearer);
    if ("POST".equals(method)) {
      r.header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofByteArray(body));
    } else {
      r.method(method, HttpRequest.BodyPublishers.noBody());
    }
    try {
      HttpResponse<byte[]> resp = client.send(r.build(), HttpResponse.BodyHandlers.ofByteArray());
      return new Response(resp.statusCode(), resp.body());
    } catch (SSLHandshakeException e) {
      throw new Transport.CertificateException("TLS handshake refused: " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
  }
}
