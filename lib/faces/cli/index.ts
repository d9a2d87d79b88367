/**
 * The command line, as a library: `main(argv, io)` for tests and programs, `runCommand(argv)` for
 * the bin file. This file is the whole list of what the CLI exports.
 */
export { type CliIo, EXIT, oneLine } from "./io";
export { main, runCommand } from "./main";
