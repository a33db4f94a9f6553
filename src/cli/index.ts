export { buildProgram, main } from './program.ts';
export { UserInputError, reportFailure } from './failure.ts';
