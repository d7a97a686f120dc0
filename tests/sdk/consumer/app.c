/* A separate project's program using the installed SDK: checks the header and library versions agree,
 * then (given a model) loads it and generates a few tokens. Usage: app [MODEL] */
#include <stdio.h>
#include <string.h>

#include <pocketllm/pocketllm.h>

int main(int argc, char** argv) {
  if (pllm_version_number() != PLLM_VERSION_NUMBER || strcmp(pllm_version(), PLLM_VERSION_STRING) != 0) {
    fprintf(stderr, "header %s but library %s\n", PLLM_VERSION_STRING, pllm_version());
    return 1;
  }
  printf("pocketllm %s\n", pllm_version());
  if (argc < 2) return 0;
  pllm_model* model = NULL;
  pllm_status st = pllm_model_load(argv[1], NULL, NULL, &model);
  if (st != PLLM_OK) {
    fprintf(stderr, "load: %s: %s\n", pllm_status_string(st), pllm_last_error());
    return 1;
  }
  pllm_generate_params g = pllm_generate_default_params();
  g.max_new_tokens = 8;
  char* text = NULL;
  st = pllm_generate(model, "Once upon a time", &g, NULL, NULL, NULL, &text);
  if (st != PLLM_OK) {
    fprintf(stderr, "generate: %s: %s\n", pllm_status_string(st), pllm_last_error());
    return 1;
  }
  printf("generated:%s\n", text);
  pllm_free_string(text);
  pllm_model_free(model);
  return 0;
}
