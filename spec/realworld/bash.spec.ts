/** The corpus image `bash`: a #!/bin/bash script Entrypoint (socat and a bash handler), /app/data encrypted. The tests: ./suite.ts. */
import { corpusSuite } from './suite.js';
import { sconeTodo } from './status.js';

corpusSuite('bash', { sconeTodo });
