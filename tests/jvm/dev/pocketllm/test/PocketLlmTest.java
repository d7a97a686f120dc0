package dev.pocketllm.test;

import dev.pocketllm.Cancellation;
import dev.pocketllm.Classification;
import dev.pocketllm.Examples;
import dev.pocketllm.FederatedDevice;
import dev.pocketllm.GenerateOptions;
import dev.pocketllm.HttpsTransport;
import dev.pocketllm.LogListener;
import dev.pocketllm.MemoryEstimate;
import dev.pocketllm.Model;
import dev.pocketllm.PocketLlm;
import dev.pocketllm.PocketLlmException;
import dev.pocketllm.TrainingSession;
import dev.pocketllm.Transport;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * The Java API on the host JVM with the real stories260K: load, generate, train with cancel and resume, the
 * memory estimate, private examples, LoRA adapters with early stopping and their export, and a federated round
 * against a real pocketllm-server over TLS through java.net.http. A plain main (no test
 * framework): each check throws on failure and the process exits non-zero.
 *   PocketLlmTest MODEL_DIR WORK_DIR GOLDEN_TEXT_FILE SERVER_URL CERT_PEM ENROLMENT_TOKEN TASK_ID
 */
public final class PocketLlmTest {
  private static int checks = 0;

  private static void check(boolean ok, String what) {
    ++checks;
    if (!ok) throw new AssertionError("FAILED: " + what);
  }

  private interface Call {
    void run() throws Exception;
  }

  private static PocketLlmException expectFailure(int status, String what, Call call) throws Exception {
    try {
      call.run();
    } catch (PocketLlmException e) {
      check(e.status() == status, what + ": status " + e.status() + " (" + e.getMessage() + "), expected " + status);
      return e;
    }
    throw new AssertionError("FAILED: " + what + ": no exception");
  }

  // GenerateOptions and a TokenListener: pieces arrive as whole characters and join into the returned text (at a
  // classify: each text's label as evaluate scores it (its accuracy = the share classify labels right), the
  // probabilities a distribution over the labels in their given order, and no labels refused.
  static void classify(Model m, Path work) throws Exception {
    String[] texts = {"a wonderful and moving film", "a dull and tiresome film", "the best movie of the year",
                      "the worst mess i have seen", "funny , warm and true", "boring from start to end"};
    int[] labels = {1, 0, 1, 0, 1, 0};
    StringBuilder tsv = new StringBuilder("sentence\tlabel\n");
    int correct = 0;
    for (int i = 0; i < texts.length; ++i) {
      tsv.append(texts[i]).append('\t').append(labels[i]).append('\n');
      Classification c = m.classify(texts[i], "sst2");
      check(c.probabilities.length == 2 && Math.abs(c.probabilities[0] + c.probabilities[1] - 1) < 1e-5
            && c.label == (c.probabilities[1] > c.probabilities[0] ? 1 : 0), "classify: " + c);
      Classification swapped = m.classify(texts[i], null, "{text} It was", "1:good,0:bad", null);
      check(Math.abs(swapped.probabilities[0] - c.probabilities[1]) < 1e-6 && swapped.label == 1 - c.label,
            "labels in the other order swap the answer: " + swapped + " against " + c);
      correct += c.label == labels[i] ? 1 : 0;
    }
    Path file = work.resolve("classify.tsv");
    Files.writeString(file, tsv.toString());
    double accuracy = m.evaluate(file.toString(), "classify", "0:bad,1:good", null)[1];
    check(Math.abs(accuracy - correct / 6.0) < 1e-12, "classify agrees with evaluate: " + correct + "/6 against " + accuracy);
    expectFailure(PocketLlmException.INVALID_ARGUMENT, "classify without labels", () -> m.classify("x", null, null, null, null));
    expectFailure(PocketLlmException.INVALID_ARGUMENT, "classify with an unknown preset", () -> m.classify("x", "imdb"));
  }

  // high temperature stories260K samples byte tokens that split characters or form none); a repetition penalty
  // changes the greedy text; a listener that says stop, or throws, stops generation.
  private static void streamedGeneration(Model m) throws Exception {
    int replaced = 0;
    for (long seed = 1; seed <= 4; ++seed) {
      StringBuilder heard = new StringBuilder();
      int[] pieces = {0};
      String text = m.generate("Once", new GenerateOptions().maxNewTokens(200).sample(5.0f, 1.0f).seed(seed), piece -> {
        heard.append(piece);
        ++pieces[0];
        return !piece.isEmpty();
      }, null);
      check(pieces[0] > 0 && heard.toString().equals(text), "seed " + seed + ": the " + pieces[0] + " pieces join into the text");
      if (text.indexOf('\uFFFD') >= 0) ++replaced;
    }
    check(replaced > 0, "bytes that form no character were sampled and became U+FFFD in " + replaced + " of 4 texts");
    GenerateOptions greedy = new GenerateOptions().maxNewTokens(120);
    String plain = m.generate("Once upon a time", greedy, null, null);
    check(plain.equals(m.generate("Once upon a time", 120)), "the options' defaults are the greedy defaults");
    String penalised = m.generate("Once upon a time", greedy.repetitionPenalty(1.3f), null, null);
    check(!penalised.equals(plain), "a repetition penalty of 1.3 changes the greedy text: [" + penalised + "]");
    expectFailure(PocketLlmException.INVALID_ARGUMENT, "repetition penalty 0",
        () -> m.generate("x", new GenerateOptions().repetitionPenalty(0), null, null));
    expectFailure(PocketLlmException.CANCELLED, "a listener that says stop", () -> m.generate("Once", new GenerateOptions(), p -> false, null));
    try {
      m.generate("Once", new GenerateOptions(), p -> { throw new IllegalStateException("the app's own"); }, null);
      check(false, "a throwing token listener stops generation");
    } catch (IllegalStateException ex) {
      check(ex.getMessage().equals("the app's own"), "the listener's exception reaches the caller: " + ex);
    }
    try {
      m.generate("Once", null, null, null);
      check(false, "null options are refused");
    } catch (IllegalArgumentException ex) {
      check(true, "null options: " + ex.getMessage());
    }
  }

  public static void main(String[] args) throws Exception {
    final String model = args[0];
    final Path work = Path.of(args[1]);
    final String golden = Files.readString(Path.of(args[2]), StandardCharsets.UTF_8);
    check(PocketLlm.version().matches("\\d+\\.\\d+\\.\\d+"), "version " + PocketLlm.version());
    check(PocketLlm.systemInfo().contains("\"profile\""), "system info " + PocketLlm.systemInfo());

    // Load and generate: the greedy continuation is the golden text.
    try (Model m = Model.load(model)) {
      check(m.id().matches("[0-9a-f]{64}"), "model id " + m.id());
      check(m.parameterCount() == 260032, "parameters " + m.parameterCount());
      String text = "Once upon a time" + m.generate("Once upon a time", 40);
      check(golden.startsWith(text) && text.length() > 60, "greedy text [" + text + "] is a prefix of the golden text");
      expectFailure(PocketLlmException.INVALID_ARGUMENT, "max new tokens -1", () -> m.generate("x", -1));
      // More new tokens than the 512 positions hold: the text stops where the context is full.
      String full = m.generate("Once upon a time", 5000);
      check(full.length() > 1000, "generation up to the context: " + full.length() + " characters");
      PocketLlmException ctx = expectFailure(PocketLlmException.OUT_OF_RANGE, "a prompt that fills the context",
          () -> m.generate("the dog ran. ".repeat(300), 4));
      check(ctx.getMessage().contains("context is 512 positions"), "the context in the message: " + ctx.getMessage());
      expectFailure(PocketLlmException.INVALID_ARGUMENT, "threads -5", () -> Model.load(model, -5, 0, null).close());
      expectFailure(PocketLlmException.MEMORY_BUDGET, "budget below the estimate", () -> Model.load(model, 1, 1000, null).close());
      expectFailure(PocketLlmException.NOT_FOUND, "no model", () -> Model.load(work.resolve("none").toString()).close());
      // A message naming a path outside the Basic Multilingual Plane arrives intact (not as modified UTF-8).
      PocketLlmException e = expectFailure(PocketLlmException.NOT_FOUND, "no model under an emoji",
          () -> Model.load(work.resolve("\uD83D\uDCC1-none").toString()).close());
      check(e.getMessage().contains("\uD83D\uDCC1-none"), "the emoji path in the message: " + e.getMessage());
      streamedGeneration(m);
      String info = m.info();
      check(info.contains("\"context_length\":512") && info.contains("\"parameters\":260032") && info.contains("\"id\":\"" + m.id() + "\""),
            "model info: " + info);
      check(m.contextLength() == 512, "context length " + m.contextLength());
      int tokens = m.countTokens("Once upon a time");
      check(tokens > 1 && tokens < 17 && m.countTokens("") == 1, "token counts: " + tokens);
      expectFailure(PocketLlmException.INVALID_ARGUMENT, "count tokens of null", () -> m.countTokens(null));
      classify(m, work);
    }

    trainCancelResume(model, work);
    logListener(model, work);
    examplesAdaptersExport(model, work);
    federate(model, work, args[3], Path.of(args[4]), args[5], args[6]);
    federateSecure(model, work, args[3], Path.of(args[4]), args[5], args[7]);
    System.out.println("PocketLlmTest: all " + checks + " checks passed");
  }

  private static boolean logged(List<String> lines, String prefix, String text) {
    synchronized (lines) {
      return lines.stream().anyMatch(l -> l.startsWith(prefix) && l.contains(text));
    }
  }

  // The library's log lines reach a Java listener, also while a Java exception is pending, and a listener that
  // throws, re-installs itself or calls the library changes nothing about the call it logs for.
  private static void logListener(String model, Path work) throws Exception {
    List<String> lines = Collections.synchronizedList(new ArrayList<>());
    PocketLlm.setLogListener((level, message) -> lines.add(level + " " + message), LogListener.INFO);
    expectFailure(PocketLlmException.NOT_FOUND, "no model, logged", () -> Model.load(work.resolve("log-none").toString()).close());
    check(logged(lines, LogListener.WARN + " ", "log-none"), "a failure is logged as WARN: " + lines);
    Path data = work.resolve("long.txt");
    Files.writeString(data, "the cat sat on the mat\n" + "the dog ran in the park ".repeat(40) + "\n");
    try (Model m = Model.load(model, 1, 0, null); TrainingSession s = TrainingSession.open(m, options(work.resolve("logrun"), data, 4), null)) {
      check(logged(lines, LogListener.WARN + " ", "1 training examples are longer than 32 tokens and were cut"), "the cut example is logged: " + lines);
      check(logged(lines, LogListener.INFO + " ", "2 training examples, step 0 of 4"), "the sample's size is logged: " + lines);
      // A throwing progress listener makes the call fail while its exception is pending: the failure is
      // logged (a JNI call with the exception set aside) and the app's exception still reaches the caller.
      lines.clear();
      boolean thrown = false;
      try {
        s.train(0, f -> {
          throw new IllegalStateException("progress failed");
        }, null);
      } catch (IllegalStateException ise) {
        thrown = ise.getMessage().equals("progress failed");
      }
      check(thrown, "the progress listener's exception reaches the caller with a log listener installed");
      check(logged(lines, LogListener.WARN + " ", ""), "the stop was logged: " + lines);
    }
    // A listener that throws, tries to re-install itself and calls the library inside: the call's own
    // failure is what the caller sees, the nested call completes (its failure is not logged: no recursion).
    AtomicBoolean refused = new AtomicBoolean(), nestedDone = new AtomicBoolean();
    AtomicInteger calls = new AtomicInteger();
    PocketLlm.setLogListener((level, message) -> {
      calls.incrementAndGet();
      try {
        PocketLlm.setLogListener(null, LogListener.ERROR);
      } catch (IllegalStateException e) {
        refused.set(true);
      }
      try {
        Model.load(work.resolve("nested-none").toString()).close();
      } catch (PocketLlmException e) {
        nestedDone.set(e.status() == PocketLlmException.NOT_FOUND);
      }
      throw new RuntimeException("the app's log listener failed");
    }, LogListener.WARN);
    expectFailure(PocketLlmException.NOT_FOUND, "a throwing log listener changes nothing", () -> Model.load(work.resolve("x-none").toString()).close());
    check(calls.get() == 1 && refused.get() && nestedDone.get(),
        "one line, re-installing from inside refused, the nested call done: " + calls.get() + " " + refused.get() + " " + nestedDone.get());
    expectFailure(PocketLlmException.NOT_FOUND, "still installed", () -> Model.load(work.resolve("y-none").toString()).close());
    check(calls.get() == 2, "the listener stayed installed: " + calls.get());
    PocketLlm.setLogListener(null, LogListener.ERROR);
    expectFailure(PocketLlmException.NOT_FOUND, "removed", () -> Model.load(work.resolve("z-none").toString()).close());
    check(calls.get() == 2, "no line after removal: " + calls.get());
    boolean badLevel = false;
    try {
      PocketLlm.setLogListener((level, message) -> {}, 7);
    } catch (IllegalArgumentException e) {
      badLevel = true;
    }
    check(badLevel, "level 7 is refused");
    // Evaluation progress: the share scored after each batch (32 by default: 40 lines are two batches), and a stop.
    Path forty = work.resolve("forty.txt");
    Files.writeString(forty, "the cat sat on the mat\n".repeat(40));
    try (Model m = Model.load(model, 1, 0, null)) {
      List<Float> shares = new ArrayList<>();
      double[] r = m.evaluate(forty.toString(), "lm", null, f -> shares.add(f), null);
      check(shares.size() == 2 && Math.abs(shares.get(0) - 0.8f) < 1e-6 && shares.get(1) == 1.0f && Double.isFinite(r[0]),
          "evaluation progress 0.8 then 1: " + shares);
      expectFailure(PocketLlmException.CANCELLED, "evaluation stopped by its listener", () -> m.evaluate(forty.toString(), "lm", null, f -> false, null));
    }
    // Closed in the wrong order: the model closed while its session trains stays alive for the session.
    Model early = Model.load(model, 1, 0, null);
    try (TrainingSession s = TrainingSession.open(early, options(work.resolve("early-close"), data, 3), null)) {
      early.close();
      check(s.train(0, null, null) == 3, "a session whose model was closed first still trains");
    }
  }

  private static TrainingSession.Options options(Path run, Path data, int steps) {
    TrainingSession.Options o = new TrainingSession.Options();
    o.runDir = run.toString();
    o.dataPath = data.toString();
    o.steps = steps;
    o.batchSize = 2;
    o.maxLength = 32;
    o.lr = 1e-3f;
    o.trainable = "norms";
    o.seed = 5;
    return o;
  }

  private static void trainCancelResume(String model, Path work) throws Exception {
    Path data = work.resolve("train.txt");
    Files.writeString(data, "the cat sat on the mat\nthe dog ran in the park\na bird sang a song\nshe read a book\n");
    double straight;
    try (Model m = Model.load(model, 1, 0, null); TrainingSession s = TrainingSession.open(m, options(work.resolve("straight"), data, 12), null)) {
      check(s.train(0, null, null) == 12, "a straight run of 12 steps");
      straight = m.evaluate(data.toString(), "lm", null, null)[0];
      check(m.isTrained(), "the model holds the trained weights");
    }
    Path run = work.resolve("run");
    try (Model m = Model.load(model, 1, 0, null); TrainingSession s = TrainingSession.open(m, options(run, data, 12), null)) {
      // Stopped by the listener after 3 steps, then cancelled from another thread.
      PocketLlmException e = expectFailure(PocketLlmException.CANCELLED, "listener stop", () -> s.train(0, f -> f < 0.25f, null));
      check(e.isCancelled() && s.stepsDone() == 3, "stopped after step 3, steps done " + s.stepsDone());
      AtomicInteger seen = new AtomicInteger();
      try (Cancellation c = new Cancellation()) {
        Thread t = new Thread(() -> {
          while (seen.get() < 2) Thread.onSpinWait();
          c.cancel();
        });
        t.start();
        expectFailure(PocketLlmException.CANCELLED, "cancel from another thread", () -> s.train(0, f -> {
          seen.incrementAndGet();
          try {
            Thread.sleep(20);
          } catch (InterruptedException ie) {
            Thread.currentThread().interrupt();
          }
          return true;
        }, c));
        t.join();
      }
      check(s.stepsDone() >= 5 && s.stepsDone() < 12, "cancelled mid-run at " + s.stepsDone());
      // A listener that throws (an app bug) stops the run like a cancel, and its exception reaches the caller.
      final int before = s.stepsDone();
      boolean thrown = false;
      try {
        s.train(0, f -> {
          throw new IllegalStateException("the app's listener failed");
        }, null);
      } catch (IllegalStateException ise) {
        thrown = ise.getMessage().equals("the app's listener failed");
      }
      check(thrown && s.stepsDone() == before + 1, "a throwing listener's exception, after one more step: " + s.stepsDone());
      // The run directory is locked while this session has it.
      try (Model other = Model.load(model, 1, 0, null)) {
        expectFailure(PocketLlmException.BUSY, "second opener", () -> TrainingSession.open(other, options(run, data, 12), null).close());
      }
    }
    // The preset reaches the library: an unknown one is refused, and a known one with the recipe's defaults
    // records them in the run's spec (classification with sst2's label words bad / good; on stories260K's
    // 704 norm elements Adam on balanced pairs).
    Path tsv = work.resolve("s.tsv");
    StringBuilder rows = new StringBuilder("text\tlabel\n");
    for (int i = 0; i < 8; i++)  // sentences of at least six words: the preset keeps them
      rows.append("what a truly wonderful and moving film ").append(i).append("\t1\nthis was a dull and tiresome film ")
          .append(i).append("\t0\n");
    Files.writeString(tsv, rows.toString());
    try (Model m = Model.load(model, 1, 0, null)) {
      TrainingSession.Options p = new TrainingSession.Options();
      p.runDir = work.resolve("preset-bad").toString();
      p.dataPath = tsv.toString();
      p.preset = "imdb";
      expectFailure(PocketLlmException.INVALID_ARGUMENT, "unknown preset", () -> TrainingSession.open(m, p, null).close());
      p.preset = "sst2";
      p.runDir = work.resolve("preset").toString();
      p.steps = 1;
      p.maxLength = 32;
      try (TrainingSession s = TrainingSession.open(m, p, null)) {
        String spec = Files.readString(work.resolve("preset").resolve("spec.json"));
        check(spec.contains("\"batch_size\": 2,") && spec.contains("\"name\": \"adam\"") && spec.contains("\" good\"")
            && spec.contains("\"cosine\""),
            "the sst2 preset's recipe in spec.json");
      }
    }
    // The app restarts: a new model resumes the run and ends on the uninterrupted weights.
    try (Model m = Model.load(model, 1, 0, null); TrainingSession s = TrainingSession.open(m, options(run, data, 12), null)) {
      check(s.train(0, null, null) == 12, "resumed to 12 steps");
      double resumed = m.evaluate(data.toString(), "lm", null, null)[0];
      check(resumed == straight, "resumed loss " + resumed + " equals the straight run's " + straight);
    }
  }

  // What an app does before and after training: checks the model fits, collects the user's examples into a
  // private file, trains LoRA adapters on them with early stopping, and exports the adapters for PEFT and the
  // merged model as GGUF.
  private static void examplesAdaptersExport(String model, Path work) throws Exception {
    MemoryEstimate small = Model.estimateMemory(model, 1, 64), large = Model.estimateMemory(model, 8, 256);
    check(small.weightsBytes > 1000000 && small.weightsBytes < 1200000, "stories260K's float32 weights: " + small);
    check(small.totalBytes == small.weightsBytes + small.activationBytes, "total = weights + activations: " + small);
    check(large.weightsBytes == small.weightsBytes && large.activationBytes > small.activationBytes,
          "more tokens take more activations, the same weights: " + small + " / " + large);
    expectFailure(PocketLlmException.NOT_FOUND, "estimate of no model", () -> Model.estimateMemory(work.resolve("none").toString(), 1, 64));
    expectFailure(PocketLlmException.INVALID_ARGUMENT, "estimate for 0 tokens", () -> Model.estimateMemory(model, 1, 0));

    Path data = work.resolve("private.jsonl");
    String[] texts = {"the cat sat on the mat", "the dog ran in the park", "a bird sang a song", "she read a book",
                      "the sun was warm", "they played in the garden"};
    try (Examples ex = new Examples()) {
      expectFailure(PocketLlmException.INVALID_ARGUMENT, "writing no examples", () -> ex.write(data.toString()));
      for (String t : texts) ex.addText(t);
      expectFailure(PocketLlmException.INVALID_ARGUMENT, "an empty text", () -> ex.addText(""));
      expectFailure(PocketLlmException.INVALID_ARGUMENT, "a null completion", () -> ex.addCompletion("q", null));
      check(ex.count() == texts.length, "count " + ex.count());
      ex.write(data.toString());
    }
    List<String> lines = Files.readAllLines(data, StandardCharsets.UTF_8);
    check(lines.size() == texts.length && lines.get(2).equals("{\"text\":\"" + texts[2] + "\"}"), "the examples file: " + lines);
    check(PosixFilePermissions.toString(Files.getPosixFilePermissions(data)).equals("rw-------"), "the examples file is private");
    Examples closed = new Examples();
    closed.close();
    boolean refused = false;
    try {
      closed.addText("x");
    } catch (IllegalStateException e) {
      refused = true;
    }
    check(refused, "closed examples refuse new ones");
    Cancellation late = new Cancellation();
    late.close();
    late.cancel();  // a "stop" that comes after the work ended and its flag was freed: nothing happens
    late.reset();
    boolean nul = false;
    try (Examples ex = new Examples()) {
      ex.addText("cut\0here");  // would reach C as "cut"
    } catch (IllegalArgumentException e) {
      nul = true;
    }
    check(nul, "a text with a NUL character is refused, not cut short");

    try (Model m = Model.load(model, 1, 0, null)) {
      final double before = m.evaluate(data.toString(), "lm", null, null)[0];
      // An lr far too high for these adapters (the validation loss climbs from 2.7 to ~7): the run stops after
      // `patience` validations without a better loss and the model ends with the best weights, the initial ones.
      TrainingSession.Options o = new TrainingSession.Options();
      o.runDir = work.resolve("lora").toString();
      o.dataPath = data.toString();
      o.steps = 8;
      o.batchSize = 2;
      o.maxLength = 32;
      o.lr = 1e-2f;
      o.loraRank = 4;
      o.loraAlpha = 8;
      o.loraInitSeed = 7;
      o.validationExamples = 2;
      o.validateEvery = 2;
      o.patience = 3;
      o.schedule = "linear";
      // Bad options are refused before the run directory exists.
      o.loraRank = 5000;
      expectFailure(PocketLlmException.INVALID_ARGUMENT, "rank 5000", () -> TrainingSession.open(m, o, null).close());
      o.loraRank = 4;
      o.schedule = "zigzag";
      expectFailure(PocketLlmException.INVALID_ARGUMENT, "an unknown schedule", () -> TrainingSession.open(m, o, null).close());
      o.schedule = "linear";
      o.loraTargets = "no_such_layer";
      expectFailure(PocketLlmException.INVALID_ARGUMENT, "targets that match nothing", () -> TrainingSession.open(m, o, null).close());
      o.loraTargets = null;
      o.memoryBudgetBytes = 1000;
      expectFailure(PocketLlmException.MEMORY_BUDGET, "a budget below the session's estimate", () -> TrainingSession.open(m, o, null).close());
      o.memoryBudgetBytes = 0;
      o.runDir = work.resolve("lora").toString() + "\0x";
      boolean nulDir = false;
      try {
        TrainingSession.open(m, o, null).close();
      } catch (IllegalArgumentException e) {
        nulDir = true;
      }
      check(nulDir, "a run directory with a NUL character is refused");
      o.runDir = work.resolve("lora").toString();
      check(!Files.exists(work.resolve("lora")), "no run directory from refused options");
      try (TrainingSession s = TrainingSession.open(m, o, null)) {
        check(s.totalSteps() == 8 && s.stepsDone() == 0, "a new run of 8 steps");
        String spec = Files.readString(work.resolve("lora").resolve("spec.json"));
        check(spec.contains("\"rank\": 4") && spec.contains("\"alpha\": 8.0") && spec.contains("\"init_seed\": \"0000000000000007\"")
              && spec.contains("\"targets\": \"q_proj,v_proj\"") && spec.contains("\"trainable\": \"none\"")
              && spec.contains("\"schedule\": \"linear\""), "the adapter options in spec.json: " + spec);
        check(spec.contains("\"validation\"") && spec.contains("\"every\": 2") && spec.contains("\"patience\": 3"),
              "the early-stopping options in spec.json: " + spec);
        int done = s.train(0, null, null);
        check(done == 6, "stopped early after validations at steps 2, 4 and 6 found no better loss, at step " + done);
      }
      double after = m.evaluate(data.toString(), "lm", null, null)[0];
      check(after == before, "the model holds the best validated (initial) adapters: loss " + after + ", at the start " + before);
      String sampled = m.generate("Once upon a time", 8, false, 0.8f, 5, 0.9f, 3, null);
      check(!sampled.isEmpty() && sampled.equals(m.generate("Once upon a time", 8, false, 0.8f, 5, 0.9f, 3, null)),
            "top-k / top-p sampling from one seed repeats: [" + sampled + "]");
      expectFailure(PocketLlmException.INVALID_ARGUMENT, "top-p 2", () -> m.generate("x", 4, false, 1.0f, 0, 2.0f, 0, null));
    }
    Path peft = work.resolve("peft");
    PocketLlm.export(work.resolve("lora").toString(), peft.toString(), "peft", null);
    String config = Files.readString(peft.resolve("adapter_config.json"));
    check(config.contains("\"r\": 4") && config.contains("\"lora_alpha\": 8") && Files.size(peft.resolve("adapter_model.safetensors")) > 1000,
          "the PEFT adapter directory: " + config);
    Path gguf = work.resolve("merged.gguf");
    PocketLlm.export(work.resolve("lora").toString(), gguf.toString(), "gguf", "q8_0");
    byte[] magic = new byte[4];
    try (InputStream in = Files.newInputStream(gguf)) {
      check(in.read(magic) == 4 && new String(magic, StandardCharsets.US_ASCII).equals("GGUF"), "the merged GGUF file");
    }
    try (Model merged = Model.load(gguf.toString())) {
      check(merged.parameterCount() == 260032, "the merged model loads with the base's parameters");
    }
    expectFailure(PocketLlmException.INVALID_ARGUMENT, "an unknown export format",
                  () -> PocketLlm.export(work.resolve("lora").toString(), work.resolve("x").toString(), "onnx", null));
  }

  private static SSLContext trusting(Path pem) throws Exception {
    KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
    ks.load(null, null);
    try (InputStream in = Files.newInputStream(pem)) {
      ks.setCertificateEntry("server", CertificateFactory.getInstance("X.509").generateCertificate(in));
    }
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(ks);
    SSLContext ctx = SSLContext.getInstance("TLS");
    ctx.init(null, tmf.getTrustManagers(), null);
    return ctx;
  }

  private static FederatedDevice.Options deviceOptions(Path work, String url, String token, String task, String name) {
    FederatedDevice.Options o = new FederatedDevice.Options();
    o.serverUrl = url;
    o.credentialsPath = work.resolve(name + ".cred").toString();
    o.enrolmentToken = token;
    o.taskId = task;
    o.dataPath = work.resolve("train.txt").toString();
    o.stateDir = work.resolve(name + "-state").toString();
    return o;
  }

  private static void federate(String model, Path work, String url, Path cert, String token, String task) throws Exception {
    // A transport whose server answers garbage, and one whose TLS the device does not trust: clear errors,
    // no device state made, the model still usable.
    try (Model m = Model.load(model, 1, 0, null)) {
      Transport garbage = (method, path, body, bearer) -> new Transport.Response(201, "{\"device_id\":".getBytes(StandardCharsets.UTF_8));
      expectFailure(PocketLlmException.CORRUPT, "truncated enrolment reply",
          () -> FederatedDevice.open(m, deviceOptions(work, url, token, task, "garbage"), garbage, null).close());
      check(!Files.exists(work.resolve("garbage-state")), "no state from a bad reply");
      HttpsTransport untrusted = new HttpsTransport(url, SSLContext.getDefault(), Duration.ofSeconds(10));
      expectFailure(PocketLlmException.MISMATCH, "a server certificate the platform does not trust",
          () -> FederatedDevice.open(m, deviceOptions(work, url, token, task, "untrusted"), untrusted, null).close());
      FederatedDevice.Options tight = deviceOptions(work, url, token, task, "tight");
      tight.memoryBudgetBytes = 1000;
      expectFailure(PocketLlmException.MEMORY_BUDGET, "a device budget below the task's rounds",
          () -> FederatedDevice.open(m, tight, new HttpsTransport(url, trusting(cert), Duration.ofSeconds(10)), null).close());
      check(!m.isTrained() && !m.generate("Once", 3).isEmpty(), "the model is untouched and usable");
    }
    // The real round over TLS through java.net.http.
    HttpsTransport https = new HttpsTransport(url, trusting(cert), Duration.ofSeconds(10));
    try (Model m = Model.load(model, 1, 0, null)) {
      try (FederatedDevice d = FederatedDevice.open(m, deviceOptions(work, url, token, task, "jvm"), https, null)) {
        check(d.sync(null) == 0, "a new task is at version 0");
        long round = d.runRound(null);
        check(round == 1, "submitted to round 1, got " + round);
        check(d.runRound(null) == 0, "a second call in the same round does not submit again");
        long version = waitForVersion(d, 2);
        check(version == 2, "the round was applied (tau 2): version " + version);
        double[] e = d.evaluate(work.resolve("train.txt").toString());
        check(Double.isFinite(e[0]), "device loss " + e[0]);
        check(!d.generate("Once upon a time", 8).isEmpty(), "the device generates");
        expectFailure(PocketLlmException.INVALID_ARGUMENT, "a device of a language-model task does not classify",
            () -> d.classify("a fine film", null));
        String sampled = d.generate("Once upon a time", 8, false, 0.8f, 5, 0.9f, 11, null);
        check(sampled.equals(d.generate("Once upon a time", 8, false, 0.8f, 5, 0.9f, 11, null)), "the device samples from a seed");
        check(d.bytesSent() > 0 && d.bytesReceived() > 0, "bytes sent " + d.bytesSent() + " and received " + d.bytesReceived());
        // While the device has the model, other uses of it are refused.
        expectFailure(PocketLlmException.BUSY, "model in use by the device", () -> m.generate("x", 2));
      }
      check(m.isTrained(), "after the device closes, the model holds the shared weights");
      check(Files.exists(work.resolve("jvm.cred")), "the credential was kept");
    }
  }

  // Syncs until the device holds version `want`, for up to 60 s (a round closes on the server's clock, and
  // a loaded machine — the suite runs beside other tests — can delay it by seconds); returns the last.
  private static long waitForVersion(FederatedDevice d, long want) throws Exception {
    long deadline = System.nanoTime() + 60_000_000_000L;
    long version = d.sync(null);
    while (version < want && System.nanoTime() < deadline) {
      Thread.sleep(50);
      version = d.sync(null);
    }
    return version;
  }

  // A masked secure-aggregation round (docs/secagg.md): runRound walks the phases and returns once the
  // device has done its part, so the two devices run on two threads.
  private static void federateSecure(String model, Path work, String url, Path cert, String token, String task) throws Exception {
    try (Model ma = Model.load(model, 1, 0, null); Model mb = Model.load(model, 1, 0, null);
         FederatedDevice a = FederatedDevice.open(ma, deviceOptions(work, url, token, task, "sa"),
                                                  new HttpsTransport(url, trusting(cert), Duration.ofSeconds(10)), null);
         FederatedDevice b = FederatedDevice.open(mb, deviceOptions(work, url, token, task, "sb"),
                                                  new HttpsTransport(url, trusting(cert), Duration.ofSeconds(10)), null)) {
      final long[] rounds = new long[2];
      final Throwable[] errors = new Throwable[2];
      Thread ta = new Thread(() -> { try { rounds[0] = a.runRound(null); } catch (Throwable e) { errors[0] = e; } });
      // b joins 3 s late, so a polls the round several times inside one native call (its transport's local
      // references must not pile up: test_jvm.sh fails on any -Xcheck:jni warning).
      Thread tb = new Thread(() -> {
        try {
          Thread.sleep(3000);
          rounds[1] = b.runRound(null);
        } catch (Throwable e) {
          errors[1] = e;
        }
      });
      ta.start();
      tb.start();
      ta.join(60000);
      tb.join(60000);
      check(errors[0] == null && errors[1] == null, "both devices took the masked round: " + errors[0] + " / " + errors[1]);
      check(rounds[0] == 1 && rounds[1] == 1, "both submitted to round 1: " + rounds[0] + ", " + rounds[1]);
      long version = waitForVersion(a, 2);
      check(version == 2 && b.sync(null) == 2, "the securely aggregated round was applied: version " + version);
      check(a.evaluate(work.resolve("train.txt").toString())[0] == b.evaluate(work.resolve("train.txt").toString())[0],
            "both devices hold the same shared weights");
    }
  }
}
