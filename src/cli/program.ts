// The v2xfuse command line (program definition; src/cli/run.ts is the executable entry). commander parses arguments (maintained, typed, generates --help per subcommand).
import { Command, CommanderError } from 'commander';
import { registerInspect } from './inspect.ts';
import { registerSimulate } from './simulate.ts';
import { registerDemo } from './demo.ts';
import { registerDetect } from './detect.ts';
import { registerExportTraining } from './export-training.ts';
import { registerBroker } from './broker.ts';
import { registerKeygen } from './keygen.ts';
import { registerNodes } from './nodes.ts';
import { registerPrediction } from './predict.ts';
import { registerView } from './view.ts';
import { registerSweep } from './sweep.ts';
import { EXIT_USAGE } from './failure.ts';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('v2xfuse')
    .description('Cooperative perception for connected vehicles and roadside units: datasets, simulation, ONNX BEV perception, fusion over MQTT.')
    .version('0.1.0')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  registerInspect(program);
  registerSimulate(program);
  registerDemo(program);
  registerDetect(program);
  registerExportTraining(program);
  registerBroker(program);
  registerKeygen(program);
  registerNodes(program);
  registerPrediction(program);
  registerView(program);
  registerSweep(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has already printed its message (or the help / version text).
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    throw err;
  }
}

