import { openImage, pipeline, writeImage, type Transform } from '../lib/index.js';

const addLabel: Transform = {
  name: 'label',
  apply(draft) {
    (draft.config.config ??= {}).Labels = { ...draft.config.config?.Labels, 'org.example.checked': 'yes' };
  },
};

await using out = await pipeline(await openImage('oci:./layout:app'), [addLabel]);
await writeImage(out.image, 'oci:./layout:app-labelled');
