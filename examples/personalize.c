/* Personalise a model on the device's own text through the C ABI only — what a JNI or Swift bridge
 * calls. Usage: personalize MODEL TRAIN.txt HELDOUT.txt RUN_DIR [STEPS] */
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

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s MODEL TRAIN.txt HELDOUT.txt RUN_DIR [STEPS]\n", argv[0]);
    return 2;
  }
  printf("pocketllm %s (perturbation spec v%d)\n", pllm_version(), pllm_perturbation_spec_version());
  pllm_finetune_params fp = pllm_finetune_default_params();
  fp.model_path = argv[1];
  fp.data_path = argv[2];
  fp.eval_data_path = argv[3];
  fp.run_dir = argv[4];
  fp.steps = argc > 5 ? atoi(argv[5]) : 100;
  double eval_loss = NAN;
  pllm_status st = pllm_finetune(&fp, on_progress, NULL, &eval_loss);
  fputc('\n', stderr);
  if (st != PLLM_OK) {
    fprintf(stderr, "fine-tuning failed (%d): %s\n", (int)st, pllm_last_error());
    return 1;
  }
  printf("held-out loss after fine-tuning: %.4f\n", eval_loss);

  pllm_model* model = NULL;
  pllm_model_params mp = pllm_model_default_params();
  if (pllm_model_load(argv[1], &mp, &model) != PLLM_OK) {
    fprintf(stderr, "load failed: %s\n", pllm_last_error());
    return 1;
  }
  printf("base model: %llu parameters\n", (unsigned long long)pllm_model_n_params(model));
  pllm_generate_params gp = pllm_generate_default_params();
  gp.max_new_tokens = 24;
  char* text = NULL;
  printf("base model continues \"Once upon a time\": ");
  if (pllm_generate(model, "Once upon a time", &gp, on_piece, NULL, &text) != PLLM_OK) {
    fprintf(stderr, "\ngenerate failed: %s\n", pllm_last_error());
    pllm_model_free(model);
    return 1;
  }
  printf("\n");
  pllm_free_string(text);
  pllm_model_free(model);
  return 0;
}
