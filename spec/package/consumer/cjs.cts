// A CommonJS consumer of the packed `enclavify`: `require()` of the ESM package (Node >= 20.19
// loads it through the `default` condition). argv: BB_OCI
import enclavify = require('enclavify');

async function main(): Promise<void> {
  const { openImage, ERROR_CODES, EnclavifyError, parseRef } = enclavify;
  const image: enclavify.Image = await openImage(`oci:${process.argv[2]!}:latest`);
  const layers = await image.layers();
  const ref = parseRef('oci:/tmp/x:latest');
  let badRef: string | undefined;
  try {
    parseRef('nope:');
  } catch (e) {
    badRef = e instanceof EnclavifyError ? e.code : 'other';
  }
  console.log(JSON.stringify({ layers: layers.length, digest: await image.digest(), transport: ref.transport, badRef, codes: Object.keys(ERROR_CODES).length > 10 }));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
