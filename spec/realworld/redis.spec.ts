/** The corpus image `redis`: a key-value store (Debian's redis-server: the Entrypoint is a symlink to the multi-call binary redis-check-rdb), /var/lib/redis encrypted. The tests: ./suite.ts. */
import { corpusSuite } from './suite.js';
import { sconeTodo } from './status.js';

corpusSuite('redis', { sconeTodo });
