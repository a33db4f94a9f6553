// One error type for every codec failure, with a `kind` a receiver can count rejections by (DESIGN.md: receivers
// reject, count and log bad messages and keep running) and a message that names what is wrong.

/**
 * - `spec`: a codec string the user typed does not parse;
 * - `unavailable`: it parses but needs something this installation lacks (a channel-reduction model);
 * - `input`: the encoder was given data it cannot encode (wrong length, NaN, a value out of range);
 * - `corrupt`: a payload or its header is malformed, truncated or fails its checksum.
 */
export type CodecErrorKind = 'spec' | 'unavailable' | 'input' | 'corrupt';

export class CodecError extends Error {
  readonly userFacing = true;
  constructor(readonly kind: CodecErrorKind, message: string) {
    super(message);
    this.name = new.target.name;
  }
}
