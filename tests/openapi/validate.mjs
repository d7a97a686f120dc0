// Validates an OpenAPI document (schema and $refs) and prints its operations, one "METHOD /path" a line.
import SwaggerParser from "@apidevtools/swagger-parser";

const file = process.argv[2];
try {
  const api = await SwaggerParser.validate(file);
  for (const [path, item] of Object.entries(api.paths))
    for (const method of ["get", "put", "post", "delete", "patch", "head", "options"])
      if (item[method]) console.log(`${method.toUpperCase()} ${path}`);
} catch (e) {
  console.error(`${file}: ${e.message}`);
  process.exit(1);
}
