// Executable entry: `v2xfuse …` and `npm run v2xfuse -- …` land here.
import { main } from './program.ts';

await main(process.argv);
