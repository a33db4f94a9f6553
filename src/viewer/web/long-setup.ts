// Runs before the generated message module is evaluated (wire.ts imports this first): without a Long class
// protobufjs reads 64-bit fields as doubles, and nanosecond timestamps (≈ 1.8e18) lose their last bits, so two
// messages of the same frame could fail to match. Node finds `long` on its own; a bundle must hand it over.
import $protobuf from 'protobufjs/minimal.js';
import Long from 'long';

$protobuf.util.Long = Long as unknown as typeof $protobuf.util.Long;
$protobuf.configure();
