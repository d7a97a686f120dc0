/* Personalise a model on the device's own text through the C ABI only — what a JNI or Swift bridge
 * calls: load the model once, fine-tune it in place in a resumable session, and generate with what it
 * learnt (no export, no reload). Usage: personalize MODEL TRAIN.txt HELDOUT.txt RUN_DIR [STEPS] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "pocketllm/pocketllm.h"

static bool on_progress(float progress, void* user) {
  (void)user;
  fprintf(stderr, "\rfine-tuning %3.0f%%", 100.0f * progress);
  return true; /* false would stop after this step; the run stays resumable */
}

static bool on_piece(const char* piece, void* user) {
  (void)user;
  fputs(piece, stdout);
  fflush(stdout);
  return true;
}

static int fail(const char* what, pllm_status st) {
  fprintf(stderr, "\n%s failed (%s): %s\n", what, pllm_status_string(st), pllm_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s MODEL TRAIN.txt HELDOUT.txt RUN_DIR [STEPS]\n", argv[0]);
    return 2;
  }
  printf("pocketllm %s (headers %s, perturbation spec v%d)\n", pllm_version(), PLLM_VERSION_STRING, pllm_perturbation_spec_version());
  pllm_model* model = NULL;
  pllm_model_params mp = pllm_model_default_params();
  pllm_status st = pllm_model_load(argv[1], &mp, NULL, &model);
  if (st != PLLM_OK) return fail("load", st);
  printf("model: %llu parameters\n", (unsigned long long)pllm_model_n_params(model));

  pllm_generate_params gp = pllm_generate_default_params();
  gp.max_new_tokens = 24;
  printf("before: ");
  st = pllm_generate(model, "Once upon a time", &gp, on_piece, NULL, NULL, NULL);
  if (st != PLLM_OK) return fail("generate", st);
  printf("\n");

  pllm_session_params sp = pllm_session_default_params();
  sp.data_path = argv[2];
  sp.eval_data_path = argv[3];
  sp.run_dir = argv[4];
  sp.steps = argc > 5 ? atoi(argv[5]) : 100;
  pllm_session* session = NULL;
  st = pllm_session_open(model, &sp, NULL, &session);
  if (st != PLLM_OK) return fail("session", st);
  pllm_control control = pllm_control_default();
  control.progress = on_progress;
  double eval_loss = NAN;
  st = pllm_session_train(session, 0, &control, NULL, &eval_loss);
  pllm_session_free(session);
  if (st != PLLM_OK) return fail("fine-tuning", st);
  printf("\nheld-out loss after fine-tuning: %.4f\n", eval_loss);

  printf("after: ");
  st = pllm_generate(model, "Once upon a time", &gp, on_piece, NULL, NULL, NULL);
  if (st != PLLM_OK) return fail("generate", st);
  printf("\n");
  pllm_model_free(model);
  return 0;
}
