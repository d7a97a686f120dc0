package dev.pocketllm;

import java.io.IOException;

/**
 * How a {@link FederatedDevice} reaches the server: the app's own HTTPS stack (OkHttp, java.net.http,
 * URLSession on iOS), with the platform's trust store. Called on the thread of the device call.
 */
public interface Transport {
  /** A reply: any HTTP status counts (the library reads 4xx/5xx itself). */
  final class Response {
    public final int status;
    public final byte[] body;

    public Response(int status, byte[] body) {
      this.status = status;
      this.body = body;
    }
  }

  /** Thrown for a certificate the transport refused: never retried (other IOExceptions are). */
  class CertificateException extends IOException {
    private static final long serialVersionUID = 1L;

    public CertificateException(String message, Throwable cause) { super(message, cause); }
  }

  /**
   * One request: method ("GET"/"POST"), path with query, a JSON body (may be empty), and a bearer credential
   * ("" for none; otherwise send "Authorization: Bearer " + bearer). Throw IOException when the request did not
   * reach the server or no reply came back.
   */
  Response send(String method, String path, byte[] body, String bearer) throws IOException;
}
