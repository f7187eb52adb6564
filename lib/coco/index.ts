/**
 * `enclavify/coco`: Confidential Containers. {@link initData} builds the init data document (its
 * digest bound into the TEE evidence, the pod annotation that carries it); {@link trusteeBundle}
 * the Trustee (KBS) side: the key resource, the resource and image security policies, a
 * `kbs-client` script. See docs/coco.md.
 * @packageDocumentation
 * @module enclavify/coco
 */
export { initData, INITDATA_ANNOTATION, type InitData, type InitDataOptions, type InitDataAlgorithm } from './initdata.js';
export { trusteeBundle, resourcePolicy, checkMeasurements, TEES, RUNTIME_CLASS, type Tee, type TrusteeBundle, type TrusteeBundleOptions, type PolicyReferenceValues } from './trustee.js';
