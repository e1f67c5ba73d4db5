/** The bash script the sandbox runs for `shell: true`: the command and its arguments joined. */
export function shellScript(command: string, args: readonly string[]): string {
  return [command, ...args].join(' ');
}
