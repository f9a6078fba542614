// The ovlfs command's entry point: everything it does is in commands.ts. Installed, it runs as one
// CommonJS bundle (launch.ts), so no top-level await here.
import { main } from './commands.js';

void main(process.argv.slice(1)).then((code) => {
  process.exitCode = code;
});
