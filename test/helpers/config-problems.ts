import { parseRoutes } from '../../gateway/config/load-routes-file.js';
import { ConfigError, formatProblem } from '../../gateway/errors.js';
import { createBuiltinRegistry } from '../../plugins/index.js';

const plugins = createBuiltinRegistry();

/** Every problem the loader finds in `yaml` (as routes.yaml), formatted file:line:col; [] when it is valid. */
export function configProblems(yaml: string): string[] {
  try {
    parseRoutes(yaml, 'routes.yaml', plugins);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map(formatProblem);
    throw err;
  }
  return [];
}
