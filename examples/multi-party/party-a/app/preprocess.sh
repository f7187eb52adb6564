#!/bin/sh
# Party A (the data owner): turns its raw records into the shared dataset. /data/raw is Party A's
# own encrypted volume; /data/dataset is the workflow's volume, exported to Party A and Party B.
while read -r line; do
  echo "record: $line"
done < /data/raw/records.txt > /data/dataset/dataset.txt
