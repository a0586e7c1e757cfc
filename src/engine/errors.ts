// One error type for everything the engine and the compile step refuse.
// `code` is a closed set so the CLI can map it to an exit code in one table.

export type EngineErrorCode =
  | 'BAD_DER' // input is not well-formed DER or not the structure expected
  | 'ROOT_NOT_CA' // a root to fence is not a CA certificate
  | 'UNSUPPORTED_ROOT' // a root uses something the engine cannot rewrite
  | 'UPSTREAM' // the upstream PKCS#11 module (or a browser's roots) could not be loaded or read
  | 'SOURCE' // a Namecoin source (ncdns, Namecoin Core) could not be asked, or answered what ncfence refuses
  | 'POLICY' // the policy file is malformed
  | 'VIEW' // the compiled view could not be written or read
  | 'USAGE'; // the command line is wrong

export class EngineError extends Error {
  readonly code: EngineErrorCode;

  constructor(code: EngineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EngineError';
    this.code = code;
  }
}
